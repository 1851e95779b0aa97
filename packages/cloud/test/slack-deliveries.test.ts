import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type SlackEmulator, startSlackEmulator } from '@bematic/testkit';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cloud, startCloud } from '../src/app/cloud.js';
import { registerProject } from '../src/app/provisioning.js';
import { loadCloudConfig } from '../src/config.js';
import { createDatabase } from '../src/db/database.js';

const SECRET = 'delivery-signing-secret';
const CHANNEL = 'C0DELIVER';
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sqliteUrl(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bematic-deliveries-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return `sqlite:${path.join(dir, 'bematic.db')}`;
}

/** A schema of its own in the test database, reached through the URL's search_path. */
async function postgresUrl(base: string): Promise<string> {
  const schema = `bematic_deliv_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const admin = await createDatabase(base, { schema });
  cleanups.push(async () => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db);
    await admin.close();
  });
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

async function startHttpCloud(emulator: SlackEmulator, databaseUrl: string): Promise<Cloud> {
  const cloud = await startCloud({
    config: loadCloudConfig({
      DATABASE_URL: databaseUrl,
      PORT: '0',
      SLACK_BOT_TOKEN: emulator.botToken,
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: emulator.apiUrl,
      BEMATIC_LOG_LEVEL: 'silent',
    }),
    slackRetry: { retries: 5, minTimeout: 10, maxTimeout: 50 },
  });
  await registerProject(cloud.repos, {
    channelId: CHANNEL,
    agentId: 'agent-1',
    localPath: '/srv/webapp',
    name: 'webapp',
  });
  return cloud;
}

function deliveryScenario(label: string, url: () => Promise<string>) {
  describe(`Slack deliveries are handled once (${label})`, () => {
    it('a retried and replayed mention makes one task, also after a restart; skewed timestamps are refused', async () => {
      const emulator = await startSlackEmulator({ users: [{ id: 'U1', name: 'alice' }] });
      cleanups.push(() => emulator.stop());
      emulator.addChannel({ id: CHANNEL, name: 'webapp' });
      const databaseUrl = await url();
      let cloud = await startHttpCloud(emulator, databaseUrl);
      const eventsUrl = () => `${cloud.url}/slack/events`;

      const { message, events } = emulator.prepareMention({
        user: 'U1',
        channel: CHANNEL,
        text: 'code fix the typo',
      });
      const mention = events[1] ?? {};
      const original = await emulator.deliverHttp(eventsUrl(), SECRET, mention);
      const retry = await emulator.deliverHttp(eventsUrl(), SECRET, mention, { retryNum: 1 });
      const replay = await emulator.deliverHttp(eventsUrl(), SECRET, mention);
      expect([original.status, retry.status, replay.status]).toEqual([200, 200, 200]);
      // The original's "Task started" reply is the one bot message in the thread.
      await emulator.waitFor(() => emulator.thread(CHANNEL, message.ts).some((m) => m.isBot));
      const tasks = await cloud.repos.tasks.list({});
      expect(tasks).toHaveLength(1);
      expect(tasks[0]?.prompt).toContain('fix the typo');

      await cloud.close();
      cloud = await startHttpCloud(emulator, databaseUrl);
      cleanups.push(() => cloud.close());
      const afterRestart = await emulator.deliverHttp(eventsUrl(), SECRET, mention, { retryNum: 2 });
      expect(afterRestart.status).toBe(200);

      const nowSec = Math.floor(Date.now() / 1000);
      const second = emulator.prepareMention({ user: 'U1', channel: CHANNEL, text: 'code another change' });
      const fresh = second.events[1] ?? {};
      const future = await emulator.deliverHttp(eventsUrl(), SECRET, fresh, { timestampSec: nowSec + 600 });
      const past = await emulator.deliverHttp(eventsUrl(), SECRET, fresh, { timestampSec: nowSec - 600 });
      expect([future.status, past.status]).toEqual([401, 401]);

      // A different delivery still goes through, so the refusals above were about the timestamp.
      const accepted = await emulator.deliverHttp(eventsUrl(), SECRET, fresh);
      expect(accepted.status).toBe(200);
      await emulator.waitFor(() => emulator.thread(CHANNEL, second.message.ts).some((m) => m.isBot));
      const after = await cloud.repos.tasks.list({});
      expect(after.map((t) => t.prompt).sort()).toEqual(
        [expect.stringContaining('another change'), expect.stringContaining('fix the typo')].sort(),
      );
      // One task message in the thread (an agent-offline notice may stand beside it).
      const thread = emulator.renderThread(CHANNEL, message.ts);
      expect(thread.match(/Task `task_/g)).toHaveLength(1);
    });

    it('a slash command delivered again with its trigger_id is answered once, also after a restart', async () => {
      const emulator = await startSlackEmulator({ users: [{ id: 'U1', name: 'alice' }] });
      cleanups.push(() => emulator.stop());
      emulator.addChannel({ id: CHANNEL, name: 'webapp' });
      const databaseUrl = await url();
      let cloud = await startHttpCloud(emulator, databaseUrl);
      const eventsUrl = () => `${cloud.url}/slack/events`;
      const command = emulator.prepareSlashCommand({ user: 'U1', channel: CHANNEL, text: 'help' });
      // An answer is the acknowledgement's own text or a message only alice sees.
      const answered = (r: { body: string }) => r.body.trim().length > 0;

      const original = await emulator.deliverHttp(eventsUrl(), SECRET, command);
      await emulator.waitFor(() => answered(original) || emulator.ephemerals('U1').length > 0);
      const answersAfterOriginal = emulator.ephemerals('U1').length + (answered(original) ? 1 : 0);
      expect(answersAfterOriginal).toBe(1);

      const retry = await emulator.deliverHttp(eventsUrl(), SECRET, command, { retryNum: 1 });
      await cloud.close();
      cloud = await startHttpCloud(emulator, databaseUrl);
      cleanups.push(() => cloud.close());
      const replay = await emulator.deliverHttp(eventsUrl(), SECRET, command);
      expect([original.status, retry.status, replay.status]).toEqual([200, 200, 200]);
      expect([answered(retry), answered(replay)]).toEqual([false, false]);

      // A new trigger of the same command is answered, so the silence above was the duplicate's.
      const again = emulator.prepareSlashCommand({ user: 'U1', channel: CHANNEL, text: 'help' });
      const ephemeralsBefore = emulator.ephemerals('U1').length;
      const fresh = await emulator.deliverHttp(eventsUrl(), SECRET, again);
      await emulator.waitFor(() => answered(fresh) || emulator.ephemerals('U1').length > ephemeralsBefore);
      expect(emulator.ephemerals('U1').length + [original, fresh].filter(answered).length).toBe(2);
    });
  });
}

deliveryScenario('SQLite', sqliteUrl);
const pg = process.env.BEMATIC_TEST_POSTGRES_URL;
if (pg) deliveryScenario('PostgreSQL', () => postgresUrl(pg));
else describe.skip('Slack deliveries are handled once (PostgreSQL: set BEMATIC_TEST_POSTGRES_URL)', () => {});
