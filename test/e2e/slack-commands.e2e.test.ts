import { SleepExecutor } from '@bematic/agent';
import { startTestSystem, type TestSystem } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal } from './support.js';

const ADMIN = 'U0ADMIN';
const DEV = 'U0DEV';
const VIEWER = 'U0VIEWER';

/** /bm commands, permissions, rate limits and unknown channels, as people meet them in Slack. */
describe('Slack commands and guards', () => {
  let system: TestSystem;
  const slash = async (user: string, text: string, channel = system.channel) => {
    const before = system.emulator.ephemerals(user).length;
    await system.emulator.slashCommand({ user, channel, command: '/bm', text });
    const reply = await system.emulator.waitFor(() => system.emulator.ephemerals(user)[before]);
    return `${reply.text}\n${JSON.stringify(reply.blocks ?? [])}`;
  };
  const runTask = async (user: string, text: string) => {
    const done = nextTerminal(system);
    await system.emulator.mention({
      user,
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> ${text}`,
    });
    return (await done).task;
  };

  beforeAll(async () => {
    system = await startTestSystem({
      executor: () => new SleepExecutor({ durationMs: 0 }),
      settings: { BEMATIC_RATE_LIMIT: '3', BEMATIC_ADMIN_USERS: ADMIN, BEMATIC_INSTANCE_ID: 'cloud-e2e' },
    });
    await system.cloud.repos.users.upsert({ id: VIEWER, name: 'vic', role: 'viewer' });
    system.emulator.addChannel({ id: 'C0RANDOM', name: 'random' });
  });
  afterAll(() => system?.close());

  it('a garbage slash command gets help, not a crash', async () => {
    const reply = await slash(DEV, '¯\\_(ツ)_/¯ --frobnicate "unterminated');
    expect(reply).toMatch(/help|usage|\/bm/i);
    expect(await slash(DEV, 'help')).toMatch(/Slash commands/);
  });

  it('a viewer cannot run /bm cancel, and the refusal is audited', async () => {
    const task = await runTask(DEV, 'code add a readme');
    const reply = await slash(VIEWER, `cancel ${task.id}`);
    expect(reply).toMatch(/permission|not allowed|viewer/i);
    const denied = await system.cloud.repos.audit.list({ actor: VIEWER });
    expect(denied.length).toBeGreaterThan(0);
    expect((await system.cloud.repos.tasks.findById(task.id))?.status).toBe('completed');
  });

  it('/bm status, agents and queue answer with live data', async () => {
    const agents = await slash(DEV, 'agents');
    expect(agents).toContain('agent-1');
    expect(agents).toContain('Cloud instance `cloud-e2e` (single instance, leader)');
    expect(agents).toContain('via `cloud-e2e`');
    expect(await slash(DEV, 'queue')).toMatch(/queue/i);
    const [latest] = await system.cloud.repos.tasks.list({ limit: 1 });
    expect(await slash(DEV, `status ${latest!.id}`)).toContain(latest!.id);
  });

  it('/bm archive then /bm restore brings the task back under a new id', async () => {
    const task = await runTask(DEV, 'review auth.ts');
    expect(task.botName).toBe('reviewer');
    const archived = await slash(ADMIN, `archive ${task.id}`);
    expect(await system.cloud.repos.tasks.findById(task.id)).toBeUndefined();
    const archive = await system.cloud.repos.archivedTasks.findByOriginalId(task.id);
    expect(archive).toBeDefined();
    expect(archived).toContain(archive!.id);

    const restored = await slash(ADMIN, `restore ${archive!.id}`);
    const back = (await system.cloud.repos.tasks.list()).find((t) => t.restoredFromArchive === archive!.id);
    expect(back).toBeDefined();
    expect(back!.id).not.toBe(task.id);
    expect(back!.result).toBe(task.result);
    expect(restored).toContain(back!.id);
    const actions = (await system.cloud.repos.audit.list()).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['task.archived', 'task.restored']));
  });

  it('an unknown channel gets a clear how-to instead of a task', async () => {
    const before = await system.cloud.repos.tasks.list();
    await system.emulator.mention({ user: DEV, channel: 'C0RANDOM', text: 'code fix everything' });
    const reply = await system.emulator.waitFor(() =>
      [...system.emulator.history('C0RANDOM'), ...system.emulator.ephemerals(DEV, 'C0RANDOM')].find((m) =>
        /projects add/.test(`${m.text}${JSON.stringify(m.blocks ?? [])}`),
      ),
    );
    expect(reply).toBeDefined();
    expect(await system.cloud.repos.tasks.list()).toHaveLength(before.length);
  });

  it('rate limit: past the limit a person is told when to try again, with a usage bar', async () => {
    const user = 'U0BUSY';
    for (let i = 0; i < 3; i++) await runTask(user, `code add feature ${i}`);
    const before = (await system.cloud.repos.tasks.list()).length;
    const msg = await system.emulator.mention({
      user,
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> code add one more`,
    });
    const notice = await system.emulator.waitFor(() =>
      [...system.emulator.thread(system.channel, msg.ts), ...system.emulator.ephemerals(user)].find((m) =>
        /Rate limit/i.test(`${m.text}${JSON.stringify(m.blocks ?? [])}`),
      ),
    );
    const text = `${notice.text}${JSON.stringify(notice.blocks ?? [])}`;
    expect(text).toMatch(/try again in \d+ minutes?/i);
    expect(text).toMatch(/[▓█]/);
    expect((await system.cloud.repos.tasks.list()).length).toBe(before);
  });
});
