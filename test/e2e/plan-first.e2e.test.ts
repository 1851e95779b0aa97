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
 * The Plan first button, through the real Bolt app, the Slack emulator and the real Claude Code against the
 * scripted model: a code request asked directly can still be planned first, before Claude Code has done
 * anything. The task is cancelled and the same request starts the plan flow of `--decompose`.
 */
describe('Plan first button', () => {
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

  it('cancels the direct task and proposes a plan for the same request, in the same thread', async () => {
    // The direct task's first model call is held: it has not done anything when Plan first is pressed.
    system.model.setScript([turn.text('Never shown.'), turn.text(PLAN)]);
    system.model.hold();
    const direct = nextTerminal(system, (t) => t.command !== 'decompose');
    const mention = await system.emulator.mention({
      user: ALICE,
      channel: system.channel,
      text: 'code write a.txt and b.txt',
    });
    await system.model.waitForRequest((r) => r.mainLoop && r.turnIndex === 0);
    const started = await system.emulator.waitFor(() =>
      system.emulator
        .thread(system.channel, mention.ts)
        .find((m) => m.isBot && buttonValue(m, 'task_plan_first') !== undefined),
    );
    const taskId = buttonValue(started, 'task_plan_first')!;
    expect(buttonValue(started, 'task_cancel')).toBe(taskId);

    const planned = nextTerminal(system, (t) => t.command === 'decompose');
    // Two clicks at once (a double click): the database lets exactly one of them plan; the other is told why.
    await Promise.all([click(started, 'task_plan_first'), click(started, 'task_plan_first')]);
    await system.emulator.waitFor(() =>
      system.emulator
        .ephemerals(ALICE)
        .find((e) => JSON.stringify(e).includes(`${taskId}\` is being planned already`)),
    );
    const cancelled = await direct;
    expect(cancelled.event).toBe('task.cancelled');
    expect(cancelled.task.id).toBe(taskId);
    system.model.release();
    const { event, task: planning } = await planned;
    expect(event).toBe('task.completed');

    // The same request, planned as --decompose plans it: read-only, the whole prompt, the same thread.
    const original = (await system.cloud.repos.tasks.findById(taskId)) as Task;
    expect(planning).toMatchObject({
      threadTs: original.threadTs,
      channelId: original.channelId,
      prompt: original.prompt,
      userId: ALICE,
      parentTaskId: null,
    });
    expect(planning.submission.allowedTools).toEqual(['Read', 'Glob', 'Grep']);
    expect(await system.cloud.repos.taskPlans.findByTask(planning.id)).toMatchObject({
      status: 'proposed',
      originalCommand: original.command,
      steps: [{ title: 'Write a.txt' }, { title: 'Write b.txt' }],
    });
    const planningCall = system.model.mainLoopRequests().find((r) => r.turnIndex === 1);
    expect(JSON.stringify(planningCall?.messages)).toContain('write a.txt and b.txt');
    expect(planningCall?.tools.sort()).toEqual(['Glob', 'Grep', 'Read']);

    // The thread, as a person reads it: the request and one bot message, the task's, which became the plan.
    const bot = (await readThread(system, mention.ts)).filter((m) => m.isBot);
    const render = system.emulator.renderThread(system.channel, mention.ts);
    expect(bot, render).toHaveLength(1);
    const [plan] = bot as [MessageView];
    expect(plan.ts).toBe(started.ts);
    expect(planning.progressMessageTs).toBe(started.ts);
    expect(plan.readable, render).toContain('☐ 1. Write a.txt');
    expect(plan.readable).not.toContain('Task cancelled');
    expect(buttonValue(plan, 'plan_run')).toBe(planning.id);
    // A plan's own message offers no Plan first.
    expect(buttonValue(plan, 'task_plan_first')).toBeUndefined();
    expect(original).toMatchObject({ status: 'cancelled' });
    expect(await system.cloud.repos.taskPlans.findByReplaced(taskId)).toMatchObject({ taskId: planning.id });

    // A later click on the old button starts nothing more and says why.
    const refusals = () =>
      system.emulator
        .ephemerals(ALICE)
        .filter((e) => JSON.stringify(e).includes(`${taskId}\` is being planned already`)).length;
    const before = refusals();
    await click(started, 'task_plan_first');
    await system.emulator.waitFor(() => refusals() > before || undefined);
    const planningTasks = (await system.cloud.repos.tasks.list({})).filter((t) => t.command === 'decompose');
    expect(planningTasks).toHaveLength(1);
    const audit = await system.cloud.repos.audit.list({
      action: 'decomposition.plan_first',
      resourceId: taskId,
    });
    expect(audit).toHaveLength(1);
  });

  it('is gone once Claude Code has started working, and a late click is refused', async () => {
    system.model.setScript([
      turn.textThenTool('Writing.', 'Write', { file_path: 'c.txt', content: 'c\n' }),
      turn.text('Wrote c.txt.'),
    ]);
    system.model.hold();
    const done = nextTerminal(system);
    // This test's calls (the first test's are recorded too, with the same turn numbers).
    const ours = (r: { mainLoop: boolean; messages: unknown }) =>
      r.mainLoop && JSON.stringify(r.messages).includes('write c.txt');
    const mention = await system.emulator.mention({
      user: ALICE,
      channel: system.channel,
      text: 'code write c.txt',
    });
    await system.model.waitForRequest((r) => ours(r) && r.turnIndex === 0);
    const started = await system.emulator.waitFor(() =>
      system.emulator
        .thread(system.channel, mention.ts)
        .find((m) => m.isBot && buttonValue(m, 'task_plan_first') !== undefined),
    );
    const taskId = buttonValue(started, 'task_plan_first')!;
    // The second call waits until the message shows the step without the button.
    system.model.release();
    system.model.hold();
    await system.model.waitForRequest((r) => ours(r) && r.turnIndex === 1);
    await system.emulator.waitFor(() =>
      system.emulator
        .thread(system.channel, mention.ts)
        .find(
          (m) =>
            m.ts === started.ts && m.readable.includes('Writing c.txt') && !buttonValue(m, 'task_plan_first'),
        ),
    );
    await click(started, 'task_plan_first');
    await system.emulator.waitFor(() =>
      system.emulator
        .ephemerals(ALICE)
        .find((e) => JSON.stringify(e).includes(`${taskId}\` has already started working`)),
    );
    system.model.release();
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(task.id).toBe(taskId);
    // Nothing was planned for it (the one planning task is the first test's).
    const planning = (await system.cloud.repos.tasks.list({})).filter((t) => t.command === 'decompose');
    expect(planning.map((t) => t.prompt)).not.toContain(task.prompt);
    expect(
      await system.cloud.repos.audit.list({ action: 'decomposition.plan_first', resourceId: taskId }),
    ).toEqual([]);
  });
});
