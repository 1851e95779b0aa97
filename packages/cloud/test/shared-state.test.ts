import { randomUUID } from 'node:crypto';
import { type SlackEmulator, startSlackEmulator } from '@bematic/testkit';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cloud, startCloud } from '../src/app/cloud.js';
import { registerProject } from '../src/app/provisioning.js';
import { loadCloudConfig } from '../src/config.js';
import { createDatabase, type Database } from '../src/db/database.js';

const SECRET = 'shared-state-signing-secret';
const TOKEN = 'shared-state-console-token-0123456789';
const CHANNEL = 'C0SHARED';
const base = process.env.BEMATIC_TEST_POSTGRES_URL;

/** Frames of a Server-Sent Events response, one at a time. */
async function* sseFrames(res: Response): AsyncGenerator<{ event: string; data: string }> {
  const reader = res.body?.getReader();
  if (!reader) return;
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    let sep = buffer.indexOf('\n\n');
    while (sep >= 0) {
      const lines = buffer.slice(0, sep).split('\n');
      buffer = buffer.slice(sep + 2);
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
      if (event && data !== undefined) yield { event, data };
      sep = buffer.indexOf('\n\n');
    }
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
  }
}

/**
 * Two cloud instances on one PostgreSQL schema, both receiving Slack over HTTP:
 * what lives in the database (a user's rate limit, Slack deliveries) and the
 * dashboard's live stream are one service, whichever instance a request hits.
 */
describe.skipIf(!base)('two cloud instances on one PostgreSQL database', () => {
  const schema = `bematic_shared_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  let admin: Database;
  let emulator: SlackEmulator;
  let a: Cloud;
  let b: Cloud;

  const start = (instanceId: string, databaseUrl: string) =>
    startCloud({
      config: loadCloudConfig({
        DATABASE_URL: databaseUrl,
        PORT: '0',
        SLACK_BOT_TOKEN: emulator.botToken,
        SLACK_SIGNING_SECRET: SECRET,
        SLACK_API_URL: emulator.apiUrl,
        BEMATIC_INSTANCE_ID: instanceId,
        BEMATIC_CONSOLE_TOKEN: TOKEN,
        BEMATIC_RATE_LIMIT: '1',
        BEMATIC_LOG_LEVEL: 'silent',
      }),
      slackRetry: { retries: 5, minTimeout: 10, maxTimeout: 50 },
    });

  beforeAll(async () => {
    if (!base) return;
    admin = await createDatabase(base, { schema });
    emulator = await startSlackEmulator({
      users: [
        { id: 'U1', name: 'alice' },
        { id: 'U2', name: 'bob' },
        { id: 'U3', name: 'carol' },
      ],
    });
    emulator.addChannel({ id: CHANNEL, name: 'shared' });
    const url = new URL(base);
    url.searchParams.set('options', `-c search_path=${schema}`);
    a = await start('cloud-a', url.toString());
    b = await start('cloud-b', url.toString());
    await registerProject(a.repos, {
      channelId: CHANNEL,
      agentId: 'agent-1',
      localPath: '/srv/app',
      name: 'app',
    });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await emulator?.stop();
    if (admin) {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db);
      await admin.close();
    }
  });

  const deliver = (cloud: Cloud, event: Record<string, unknown>) =>
    emulator.deliverHttp(`${cloud.url}/slack/events`, SECRET, event);
  const tasksOf = async (user: string) => (await a.repos.tasks.list({})).filter((t) => t.userId === user);

  it('a login link issued by one instance works once on any; the session holds on both and a sign-out ends it on both', async () => {
    const link = new URL(await a.loginUrl());
    const onB = `${b.url}${link.pathname}${link.search}`;
    const first = await fetch(onB, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const cookie = first.headers.get('set-cookie')?.split(';')[0] ?? '';
    expect(cookie).toMatch(/^bematic_session=/);
    const signedIn = async (cloud: Cloud) =>
      (
        (await (await fetch(`${cloud.url}/api/session`, { headers: { cookie } })).json()) as {
          signedIn: boolean;
        }
      ).signedIn;
    expect(await signedIn(a)).toBe(true);
    expect(await signedIn(b)).toBe(true);
    const again = await fetch(`${a.url}${link.pathname}${link.search}`, { redirect: 'manual' });
    expect(again.headers.get('location')).toMatch(/login=refused/);
    expect(again.headers.get('set-cookie')).toBeNull();
    const out = await fetch(`${b.url}/logout`, { method: 'POST', headers: { cookie } });
    expect(out.status).toBe(200);
    expect((await fetch(`${a.url}/api/session`, { headers: { cookie } })).status).toBe(401);
    expect((await fetch(`${a.url}/api/tasks`, { headers: { cookie } })).status).toBe(401);
  });

  it('the same Slack event delivered to both instances makes one task', async () => {
    const { message, events } = emulator.prepareMention({
      user: 'U1',
      channel: CHANNEL,
      text: 'code fix the typo',
    });
    const mention = events[1] ?? {};
    const answers = await Promise.all([deliver(a, mention), deliver(b, mention), deliver(a, mention)]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    await emulator.waitFor(() => emulator.thread(CHANNEL, message.ts).some((m) => m.isBot));
    const tasks = await tasksOf('U1');
    expect(tasks.map((t) => t.prompt)).toEqual([expect.stringContaining('fix the typo')]);
    expect(emulator.renderThread(CHANNEL, message.ts).match(/Task `task_/g)).toHaveLength(1);
  });

  it("a user's rate limit holds across instances", async () => {
    const first = emulator.prepareMention({ user: 'U2', channel: CHANNEL, text: 'code first change' });
    expect((await deliver(a, first.events[1] ?? {})).status).toBe(200);
    await emulator.waitFor(() => emulator.thread(CHANNEL, first.message.ts).some((m) => m.isBot));
    expect(await tasksOf('U2')).toHaveLength(1);

    const second = emulator.prepareMention({ user: 'U2', channel: CHANNEL, text: 'code second change' });
    expect((await deliver(b, second.events[1] ?? {})).status).toBe(200);
    const notice = await emulator.waitFor(() =>
      [...emulator.thread(CHANNEL, second.message.ts), ...emulator.ephemerals('U2')].find((m) =>
        /Rate limit/i.test(`${m.text}${JSON.stringify(m.blocks ?? [])}`),
      ),
    );
    expect(`${notice.text}${JSON.stringify(notice.blocks ?? [])}`).toMatch(/1\/1 used/);
    expect(await tasksOf('U2')).toHaveLength(1);
  });

  it("a task created on one instance appears on the other's live dashboard stream", async () => {
    const controller = new AbortController();
    const res = await fetch(`${b.url}/api/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: controller.signal,
    });
    const frames = sseFrames(res);
    expect((await frames.next()).value?.event).toBe('hello');
    const { events } = emulator.prepareMention({ user: 'U3', channel: CHANNEL, text: 'code add a feature' });
    expect((await deliver(a, events[1] ?? {})).status).toBe(200);
    const seen: Array<{ event: string; task?: { id: string } }> = [];
    for await (const frame of frames) {
      if (frame.event !== 'task') continue;
      seen.push(JSON.parse(frame.data));
      if (seen.some((f) => f.event === 'task.created')) break;
    }
    controller.abort();
    const [task] = await tasksOf('U3');
    expect(task).toBeDefined();
    // B's own events never carried this task (A received the mention): it came from A through NOTIFY.
    expect(seen.find((f) => f.event === 'task.created')?.task?.id).toBe(task?.id);
  });
});
