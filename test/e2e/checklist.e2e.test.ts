import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal, readThread } from './support.js';

/** Claude Code's TodoWrite plan, through the real Claude Code, becomes the checklist of the one task message. */
describe('plan checklist in the task message', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem({ settings: { BEMATIC_PROGRESS_INTERVAL_MS: '100' } });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
  });
  afterAll(() => system?.close());

  it('shows ☐/☑ items from TodoWrite and the running tokens and turns, and ends as one completion block with the plan', async () => {
    const todos = (statuses: string[]) => ({
      todos: ['Read the notes', 'Write hello.txt'].map((content, i) => ({
        content,
        status: statuses[i],
        activeForm: content,
      })),
    });
    system.model.setScript([
      turn.textThenTool('Planning.', 'TodoWrite', todos(['in_progress', 'pending'])),
      turn.textThenTool('Writing.', 'Write', { file_path: 'hello.txt', content: 'hello\n' }),
      turn.textThenTool('Ticking it off.', 'TodoWrite', todos(['completed', 'completed'])),
      turn.text('Wrote hello.txt.'),
    ]);
    const done = nextTerminal(system);
    const firstInProgress = (version: { blocks?: unknown }) =>
      JSON.stringify(version.blocks ?? []).includes('☐ *Read the notes*');
    // Claude Code's next model call waits until the plan with its first item in progress has been shown: the
    // update scheduler keeps only the newest state of a message, so without the wait it may skip this one.
    system.model.hold();
    const mention = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'code write hello.txt',
    });
    await system.model.waitForRequest((r) => r.mainLoop);
    system.model.release();
    system.model.hold();
    await system.emulator.waitFor(() =>
      system.emulator.thread(system.channel, mention.ts).find((m) => m.isBot && firstInProgress(m)),
    );
    // The running totals, as the scripted model reports them (10 in / 5 out per response): once the Write
    // came back, two responses. Claude Code's third call waits until the message says so. (A response's output
    // tokens are final with its last stream event, which may come after the tool ran: 6 to 10 out by then.)
    const twoTurns = (version: { blocks?: unknown; text?: string }) =>
      JSON.stringify(version.blocks ?? []).includes('Turns 2') &&
      /Tokens 20 in · ([6-9]|10) out · Turns 2/.test(version.text ?? '');
    // The second call is the one held now (the plan can show before Claude Code makes it); the third is held next.
    await system.model.waitForRequest((r) => r.mainLoop && r.turnIndex === 1);
    system.model.release();
    system.model.hold();
    await system.model.waitForRequest((r) => r.mainLoop && r.turnIndex === 2);
    await system.emulator.waitFor(() =>
      system.emulator.thread(system.channel, mention.ts).find((m) => m.isBot && twoTurns(m)),
    );
    system.model.release();
    const { event } = await done;
    expect(event).toBe('task.completed');
    const thread = await readThread(system, mention.ts);
    const bot = thread.filter((m) => m.isBot);
    expect(bot, system.emulator.renderThread(system.channel, mention.ts)).toHaveLength(1);
    const message = bot[0]!;
    expect(message.readable).toContain('Task completed');
    expect(message.readable).toContain('Plan* (2/2)');
    expect(message.readable).toContain('☑ ~Write hello.txt~');
    // On the way, the message showed the plan with the first item in progress.
    expect(message.edits.some(firstInProgress)).toBe(true);
    // …and the running totals, each response counted once although Claude Code repeats its usage per block.
    expect(message.edits.some(twoTurns)).toBe(true);
    const totals = message.edits
      .map((v) => /Tokens (\d+) in · (\d+) out · Turns (\d+)/.exec(v.text ?? ''))
      .filter((m) => m !== null)
      .map((m) => m.slice(1).map(Number));
    expect(totals.length).toBeGreaterThan(0);
    // Totals only grow, one response (10 in, at most 5 out) per turn.
    for (const [i, [input = 0, output = 0, turns = 0]] of totals.entries()) {
      expect(input).toBe(turns * 10);
      expect(output).toBeLessThanOrEqual(turns * 5);
      if (i > 0) {
        expect(turns).toBeGreaterThanOrEqual(totals[i - 1]![2]!);
        expect(output).toBeGreaterThanOrEqual(totals[i - 1]![1]!);
      }
    }
  });
});
