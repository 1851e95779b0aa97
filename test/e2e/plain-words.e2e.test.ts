import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal, readThread } from './support.js';

/**
 * Talking to the bot as a person would, through the real Bolt app and the Slack emulator, and checking
 * both what the thread shows and what Claude Code was asked.
 */
describe('plain words, direct messages and Slack text', () => {
  let system: TestSystem;
  const lastPrompt = () => JSON.stringify(system.model.mainLoopRequests().at(-1)?.messages ?? []);

  beforeAll(async () => {
    system = await startTestSystem({ settings: { BEMATIC_PROGRESS_INTERVAL_MS: '200' } });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
    system.emulator.addUser({ id: 'U0ADA', name: 'Ada' });
    system.emulator.addChannel({ id: 'C0GENERAL', name: 'general' });
  });
  afterAll(() => system?.close());

  it('a mention in plain words goes to the default bot with every word as the request', async () => {
    system.model.setScript([turn.text('Fixed the typo.')]);
    const done = nextTerminal(system);
    await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> please fix the typo in README --model haiku`,
    });
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(task).toMatchObject({ botName: 'coder', prompt: 'please fix the typo in README' });
    expect(system.model.mainLoopRequests().at(-1)?.model).toBe(system.config.BEMATIC_MODEL_FAST);
    expect(lastPrompt()).toContain('please fix the typo in README');
  });

  it('a mention that asks for nothing gets a short how-to and starts no task', async () => {
    const before = (await system.cloud.repos.tasks.list({})).length;
    for (const text of ['', 'code', '--model opus']) {
      await system.emulator.mention({
        user: 'U0ALICE',
        channel: system.channel,
        text: `<@${system.emulator.botUserId}> ${text}`,
      });
    }
    await system.emulator.waitFor(() => system.emulator.ephemerals('U0ALICE').length >= 3);
    const answers = system.emulator.ephemerals('U0ALICE').map((m) => m.text);
    expect(answers.slice(-3).every((t) => /plain words/.test(t))).toBe(true);
    expect(answers.join('\n')).not.toMatch(/Unknown bot/);
    expect((await system.cloud.repos.tasks.list({})).length).toBe(before);
  });

  it('Slack markup is decoded once: Claude reads the characters, names and URLs; the thread escapes once', async () => {
    system.model.setScript([turn.text('Done.')]);
    const done = nextTerminal(system);
    const mention = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      // What Slack delivers when someone types: review a < b && c for @Ada in #general, see the docs link
      text: `<@${system.emulator.botUserId}> review a &lt; b &amp;&amp; c for <@U0ADA> in <#C0GENERAL> and <#C0GENERAL|general>, see <https://example.com/a?x=1&amp;y=2|the docs>`,
    });
    const { task } = await done;
    const request =
      'review a < b && c for @Ada in #general and #general, see the docs (https://example.com/a?x=1&y=2)';
    expect(task.prompt).toBe(request);
    expect(lastPrompt()).toContain(JSON.stringify(request).slice(1, -1));
    const thread = await readThread(system, mention.ts);
    const bot = JSON.stringify(thread.filter((m) => m.isBot).map((m) => [m.edits, m.blocks]));
    expect(bot).toContain('a &lt; b &amp;&amp; c');
    expect(bot).not.toContain('&amp;lt;');
    expect(bot).not.toContain('&amp;amp;');
  });

  it('a direct message to the app works against the person’s project', async () => {
    system.model.setScript([turn.text('The build is slow because of the type check.')]);
    const done = nextTerminal(system);
    const dm = await system.emulator.message({
      user: 'U0ALICE',
      channel: 'D0ALICE',
      text: 'explain why the build is slow',
    });
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(task).toMatchObject({
      channelId: 'D0ALICE',
      botName: 'reviewer',
      command: 'explain',
      prompt: 'explain why the build is slow',
    });
    await system.cloud.notifications.idle();
    const thread = system.emulator.thread('D0ALICE', dm.ts);
    expect(thread.map((m) => m.readable).join('\n')).toContain('type check');
  });

  it('with several projects, a direct message asks which one until /bm projects default is run', async () => {
    await system.cloud.repos.projects.create({
      name: 'other',
      channelId: 'C0OTHER',
      agentId: 'agent-1',
      localPath: system.projectDir,
      defaultModel: null,
      maxBudgetUsd: null,
    });
    await system.emulator.message({ user: 'U0ALICE', channel: 'D0ALICE', text: 'fix the flaky test' });
    const howTo = await system.emulator.waitFor(() =>
      system.emulator.ephemerals('U0ALICE', 'D0ALICE').find((m) => /projects default/.test(m.text)),
    );
    expect(howTo.text).toMatch(/Which project/);

    await system.emulator.slashCommand({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'projects default',
    });
    await system.emulator.waitFor(() =>
      system.emulator.ephemerals('U0ALICE', system.channel).find((m) => /direct messages/.test(m.text)),
    );
    system.model.setScript([turn.text('Fixed.')]);
    const done = nextTerminal(system);
    await system.emulator.message({ user: 'U0ALICE', channel: 'D0ALICE', text: 'fix the flaky test' });
    const { task } = await done;
    const project = await system.cloud.repos.projects.findByChannel(system.channel);
    expect(task).toMatchObject({ channelId: 'D0ALICE', projectId: project?.id, command: 'fix' });
  });
});
