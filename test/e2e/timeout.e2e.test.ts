import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buttonValue, nextTerminal, readThread } from './support.js';

/** A task that outlives BEMATIC_TASK_TIMEOUT_MS ends in its one message, like every other outcome. */
describe('task timeout finalises the task message', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem({
      settings: { BEMATIC_PROGRESS_INTERVAL_MS: '100' },
      agentSettings: { BEMATIC_TASK_TIMEOUT_MS: '2000' },
    });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
  });
  afterAll(() => system?.close());

  it('fails with TIMEOUT and the progress message becomes the error, with no Cancel left', async () => {
    // The model never answers within the limit.
    system.model.setScript([turn.text('Too late.', { delayMs: 120_000 })]);
    const failed = nextTerminal(system);
    const mention = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'code fix the slow test',
    });
    const { event, task } = await failed;
    expect(event).toBe('task.failed');
    expect(task.errorCode).toBe('TIMEOUT');
    const thread = await readThread(system, mention.ts);
    const bot = thread.filter((m) => m.isBot);
    expect(bot, system.emulator.renderThread(system.channel, mention.ts)).toHaveLength(1);
    expect(bot[0]!.readable).toMatch(/time/i);
    expect(bot[0]!.readable).not.toMatch(/Running/);
    expect(buttonValue(bot[0], 'task_cancel')).toBeUndefined();
  });
});
