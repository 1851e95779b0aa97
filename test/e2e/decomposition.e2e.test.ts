import type { Task } from '@bematic/cloud';
import { type MessageView, startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buttonValue, nextTerminal, readThread } from './support.js';

const PLAN = [
  'Two steps.',
  '```json',
  JSON.stringify({
    subtasks: [
      { title: 'Write a.txt', prompt: 'Create a.txt containing a' },
      { title: 'Write b.txt', prompt: 'Create b.txt containing b' },
    ],
  }),
  '```',
].join('\n');

/**
 * `--decompose`, through the real Bolt app, the Slack emulator and the real Claude Code against the scripted
 * model: one plan message with Run plan / Edit / Cancel; Run plan runs the steps in that same message; one summary.
 */
describe('decomposition with plan approval', () => {
  let system: TestSystem;
  const ALICE = 'U0ALICE';
  beforeAll(async () => {
    system = await startTestSystem({ settings: { BEMATIC_PROGRESS_INTERVAL_MS: '100' } });
    system.emulator.addUser({ id: ALICE, name: 'alice' });
  });
  afterAll(() => system?.close());

  const click = (message: MessageView, actionId: string) =>
    system.emulator.clickButton({
      user: ALICE,
      channel: system.channel,
      messageTs: message.ts,
      actionId,
      value: buttonValue(message, actionId) ?? '',
    });
  const botMessages = async (threadTs: string) => (await readThread(system, threadTs)).filter((m) => m.isBot);
  const isStep = (parent: string) => (t: Task) => t.parentTaskId === parent;

  async function propose(text: string): Promise<{ ts: string; planning: Task; plan: MessageView }> {
    const planned = nextTerminal(system, (t) => t.command === 'decompose');
    const mention = await system.emulator.mention({ user: ALICE, channel: system.channel, text });
    const { event, task: planning } = await planned;
    expect(event).toBe('task.completed');
    const bot = await botMessages(mention.ts);
    expect(bot, system.emulator.renderThread(system.channel, mention.ts)).toHaveLength(1);
    return { ts: mention.ts, planning, plan: bot[0]! };
  }

  it('posts one plan, runs it on approval in that message, and ends with one summary', async () => {
    system.model.setScript([
      turn.text(PLAN),
      turn.textThenTool('Writing a.', 'Write', { file_path: 'a.txt', content: 'a\n' }),
      turn.text('Wrote a.txt.'),
      turn.textThenTool('Writing b.', 'Write', { file_path: 'b.txt', content: 'b\n' }),
      turn.text('Wrote b.txt.'),
    ]);
    const { ts, planning, plan } = await propose('code implement two files --decompose');
    // Read-only planning; nothing started until the person approves.
    expect(planning.submission.allowedTools).toEqual(['Read', 'Glob', 'Grep']);
    expect(plan.readable).toContain('Plan');
    expect(plan.readable).toContain('☐ 1. Write a.txt');
    expect(plan.readable).toContain('☐ 2. Write b.txt');
    expect(plan.text).toContain(`Planning task ${planning.id}`);
    expect(buttonValue(plan, 'plan_run')).toBe(planning.id);
    expect(buttonValue(plan, 'plan_edit')).toBe(planning.id);
    expect(buttonValue(plan, 'plan_cancel')).toBe(planning.id);
    expect(await system.cloud.repos.tasks.list({ parentTaskId: planning.id })).toHaveLength(0);
    // What the steps run as is in the plan's row, not read back from the audit log.
    expect(await system.cloud.repos.taskPlans.findByTask(planning.id)).toMatchObject({
      status: 'proposed',
      originalCommand: 'implement',
      steps: [{ title: 'Write a.txt' }, { title: 'Write b.txt' }],
    });
    const created = await system.cloud.repos.audit.list({ action: 'task.created', resourceId: planning.id });
    expect(JSON.stringify(created[0]?.details)).not.toContain('originalCommand');

    const first = nextTerminal(system, isStep(planning.id));
    await click(plan, 'plan_run');
    const one = await first;
    expect(one.event).toBe('task.completed');
    expect(one.task).toMatchObject({ command: 'implement', parentTaskId: planning.id });
    const second = await nextTerminal(system, (t) => isStep(planning.id)(t) && t.id !== one.task.id);
    expect(second.event).toBe('task.completed');

    const bot = await botMessages(ts);
    const render = system.emulator.renderThread(system.channel, ts);
    // The request, the plan message and the summary: nothing per step.
    expect(bot, render).toHaveLength(2);
    const [message, summary] = bot as [MessageView, MessageView];
    expect(message.ts).toBe(plan.ts);
    expect(message.readable).toContain('Plan done');
    expect(message.readable).toContain('☑ 1. ~Write a.txt~');
    expect(message.readable).toContain('☑ 2. ~Write b.txt~');
    expect(message.text).toContain('☑ 2. Write b.txt');
    expect(buttonValue(message, 'plan_run')).toBeUndefined();
    // On the way, the one message showed each step running.
    const edits = message.edits.map((e) => JSON.stringify(e.blocks ?? []));
    expect(edits.some((e) => e.includes('☐ 1. *Write a.txt*'))).toBe(true);
    expect(edits.some((e) => e.includes('☑ 1. ~Write a.txt~') && e.includes('☐ 2. *Write b.txt*'))).toBe(
      true,
    );
    expect(summary.text).toMatch(/^All 2 steps completed\. Total \$/);
    expect((await system.cloud.repos.taskPlans.findByTask(planning.id))?.status).toBe('done');
  });

  it('Edit: the edited list replied in the thread replaces the plan; Cancel ends it without running', async () => {
    system.model.setScript([turn.text(PLAN)]);
    const { ts, planning, plan } = await propose('code implement two files --decompose');
    await click(plan, 'plan_edit');
    await system.emulator.waitFor(() =>
      system.emulator.ephemerals(ALICE).find((e) => JSON.stringify(e).includes('reply in this thread')),
    );
    await system.emulator.message({
      user: ALICE,
      channel: system.channel,
      threadTs: ts,
      text: '1. Write b.txt\n2. Write c.txt — Create c.txt containing c',
    });
    const current = () => system.emulator.thread(system.channel, ts).find((m) => m.ts === plan.ts);
    await system.emulator.waitFor(() => current()?.readable.includes('Write c.txt'));
    const stored = await system.cloud.repos.taskPlans.findByTask(planning.id);
    expect(stored?.steps).toEqual([
      { title: 'Write b.txt', prompt: 'Create b.txt containing b' },
      { title: 'Write c.txt', prompt: 'Create c.txt containing c' },
    ]);
    let [message] = await botMessages(ts);
    expect(message?.readable).toContain('☐ 2. Write c.txt');
    expect(message?.readable).not.toContain('Write a.txt');

    await click(message!, 'plan_cancel');
    await system.emulator.waitFor(() => current()?.readable.includes('Plan cancelled'));
    [message] = await botMessages(ts);
    expect(message?.readable).toContain('Plan cancelled');
    expect(buttonValue(message, 'plan_run')).toBeUndefined();
    expect((await system.cloud.repos.taskPlans.findByTask(planning.id))?.status).toBe('cancelled');
    expect(await system.cloud.repos.tasks.list({ parentTaskId: planning.id })).toHaveLength(0);
    expect(await botMessages(ts)).toHaveLength(1);
  });
});
