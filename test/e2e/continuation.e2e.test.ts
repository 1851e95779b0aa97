import { ClaudeExecutor } from '@bematic/agent';
import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal, readThread } from './support.js';

/**
 * Auto-continuation through the real Claude Code (one turn per invocation): the notice stays in the one task
 * message next to the later steps, the running totals span the invocations, and the completion block counts them.
 */
describe('auto-continuation in the task message', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem({
      settings: { BEMATIC_PROGRESS_INTERVAL_MS: '100' },
      executor: (model, home) =>
        new ClaudeExecutor({
          apiKey: 'sk-ant-test-key',
          baseUrl: model.url,
          home,
          maxRetries: 0,
          maxTurns: 1,
        }),
    });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
  });
  afterAll(() => system?.close());

  it('keeps "Auto-continuing" visible beside the next step, with totals across invocations', async () => {
    system.model.setScript([
      turn.toolUse('Write', { file_path: 'a.txt', content: 'a\n' }),
      turn.toolUse('Write', { file_path: 'b.txt', content: 'b\n' }),
      turn.text('Wrote both.'),
    ]);
    const done = nextTerminal(system);
    const shows = (re: RegExp) => () =>
      system.emulator.thread(system.channel, mention.ts).find((m) => m.isBot && re.test(m.text));
    system.model.hold();
    const mention = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'code write a.txt and b.txt',
    });
    await system.model.waitForRequest((r) => r.mainLoop && r.turnIndex === 0);
    system.model.release();
    system.model.hold();
    // The second invocation's call waits until the notice is shown.
    await system.model.waitForRequest((r) => r.mainLoop && r.turnIndex === 1);
    await system.emulator.waitFor(shows(/Auto-continuing \(1\/\d\)/));
    system.model.release();
    system.model.hold();
    // The third waits until the next step is shown: the notice is still there, the totals count two responses.
    await system.model.waitForRequest((r) => r.mainLoop && r.turnIndex === 2);
    const both = /Writing b\.txt[\s\S]*Auto-continuing \(1\/\d\)[\s\S]*Tokens 20 in · \d+ out · Turns 2/;
    await system.emulator.waitFor(shows(both));
    system.model.release();

    const { event } = await done;
    expect(event).toBe('task.completed');
    const bot = (await readThread(system, mention.ts)).filter((m) => m.isBot);
    expect(bot, system.emulator.renderThread(system.channel, mention.ts)).toHaveLength(1);
    const message = bot[0]!;
    expect(message.readable).toContain('Task completed');
    expect(message.readable).toMatch(/Turns\* \d+ \(2 continuations\)/);
    expect(message.edits.some((v) => both.test(v.text))).toBe(true);
  });
});
