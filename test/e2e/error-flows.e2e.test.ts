import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buttonValue, explainOnFailure, nextTerminal, reactionNames, readThread } from './support.js';

const USER = 'U0BOB';

/** The seed's error flows, each through the whole system with the real Claude Agent SDK. */
describe('error flows', () => {
  let system: TestSystem;
  const mention = (text: string) =>
    system.emulator.mention({
      user: USER,
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> ${text}`,
    });

  beforeAll(async () => {
    system = await startTestSystem({
      settings: { BEMATIC_PROGRESS_INTERVAL_MS: '200', BEMATIC_ADMIN_CHANNEL: 'C0ADMINS' },
    });
    system.emulator.addChannel({ id: 'C0ADMINS', name: 'bematic-admins' });
  });
  afterAll(() => system?.close());

  it('Claude error: an overloaded model fails the task recoverably, and Retry runs it again', async () => {
    system.model.setScript([turn.error(529)]);
    const failed = nextTerminal(system);
    const msg = await mention('code fix the flaky test');
    const { event, task } = await failed;
    expect(event).toBe('task.failed');
    expect(task).toMatchObject({ status: 'failed', errorCode: 'MODEL_OVERLOADED', recoverable: true });

    const thread = await readThread(system, msg.ts);
    expect(reactionNames(thread[0])).toEqual(['x']);
    const errorBlock = thread.find((m) => buttonValue(m, 'task_retry'));
    expect(errorBlock, system.emulator.renderThread(system.channel, msg.ts)).toBeDefined();
    expect(errorBlock!.readable).toMatch(/overloaded/i);
    expect(errorBlock!.readable).not.toMatch(/sk-ant/);
    // The one task message became the outcome: no second message, no Cancel left behind.
    expect(thread.filter((m) => m.isBot)).toHaveLength(1);
    expect(buttonValue(errorBlock, 'task_cancel')).toBeUndefined();

    system.model.setScript([turn.text('Fixed the flaky test.')]);
    const retried = nextTerminal(system, (t) => t.id !== task.id);
    await system.emulator.clickButton({
      user: USER,
      channel: system.channel,
      messageTs: errorBlock!.ts,
      actionId: 'task_retry',
      value: buttonValue(errorBlock, 'task_retry')!,
    });
    const second = await retried;
    expect(second.event).toBe('task.completed');
    expect(second.task.threadTs).toBe(msg.ts);
    expect(second.task.submission.prompt).toBe(task.submission.prompt);
    expect((await readThread(system, msg.ts)).some((m) => /Task completed/.test(m.readable))).toBe(true);
  });

  it('Budget exceeded: the task fails, not recoverable, with a usage breakdown and no Retry button', async () => {
    system.model.setScript([
      turn.toolUse(
        'Bash',
        { command: 'echo step' },
        { usage: { input_tokens: 400_000, output_tokens: 90_000 } },
      ),
      turn.text('still going', { usage: { input_tokens: 400_000, output_tokens: 90_000 } }),
    ]);
    const failed = nextTerminal(system);
    const msg = await mention('code implement the reports page --budget 0.5');
    const { task } = await failed;
    expect(task).toMatchObject({ status: 'failed', errorCode: 'BUDGET_EXCEEDED', recoverable: false });
    expect(task.costUsd).toBeGreaterThan(0.5);
    const thread = await readThread(system, msg.ts);
    const block = thread.find(
      (m) => /budget/i.test(m.readable) && m.ts !== msg.ts && m.readable.includes('$'),
    );
    expect(block, system.emulator.renderThread(system.channel, msg.ts)).toBeDefined();
    expect(block!.readable).toMatch(/token/i);
    expect(thread.some((m) => buttonValue(m, 'task_retry'))).toBe(false);
    expect(thread.filter((m) => m.isBot)).toHaveLength(1);
    expect(buttonValue(block, 'task_cancel')).toBeUndefined();
  });

  it('Task cancellation: Cancel on the progress message stops Claude Code and the task ends cancelled, once', async () => {
    system.model.setScript([turn.text('This will take a long time…', { delayMs: 60_000 })]);
    const ended = nextTerminal(system);
    const msg = await mention('code refactor the billing module');
    await system.model.waitForRequest((r) => r.mainLoop && JSON.stringify(r.messages).includes('billing'));
    const task = await system.cloud.repos.tasks.findByThread(system.channel, msg.ts);
    expect(task?.status).toBe('running');
    const progress = (await readThread(system, msg.ts)).find((m) => buttonValue(m, 'task_cancel'));
    expect(progress).toBeDefined();

    await system.emulator.clickButton({
      user: USER,
      channel: system.channel,
      messageTs: progress!.ts,
      actionId: 'task_cancel',
      value: buttonValue(progress, 'task_cancel')!,
    });
    const { event } = await ended;
    expect(event).toBe('task.cancelled');
    await system.agent.outbound.whenEmpty();
    const row = await system.cloud.repos.tasks.findById(task!.id);
    expect(row?.status).toBe('cancelled');
    const actions = (await system.cloud.repos.audit.list({ resourceId: task!.id })).map((a) => a.action);
    expect(actions.filter((a) => a === 'task.cancelled')).toHaveLength(1);
    expect(actions).not.toContain('task.failed');
    const thread = await readThread(system, msg.ts);
    expect(reactionNames(thread[0])).toEqual(['no_entry_sign']);
    // The message that offered Cancel is the one that now says cancelled, without the button.
    const finalised = system.emulator.messageAt(system.channel, progress!.ts);
    expect(finalised?.readable).toMatch(/Task cancelled/);
    expect(buttonValue(finalised, 'task_cancel')).toBeUndefined();
    expect(thread.filter((m) => m.isBot)).toHaveLength(1);
  });

  it('Resource exhaustion: an overloaded agent refuses new work, admins are warned, and it recovers on its own', async () => {
    system.resources.cpuPercent = 99;
    const overloaded = new Promise<void>((resolve) =>
      system.cloud.events.on('agent.status', ({ status }) => {
        if (status.overloaded) resolve();
      }),
    );
    system.agent.resources.sample();
    await overloaded;
    await system.cloud.notifications.idle();
    const warning = await system.emulator.waitFor(() =>
      system.emulator.history('C0ADMINS').find((m) => /overloaded/i.test(m.readable)),
    );
    expect(warning.readable).toMatch(/CPU 99%/);

    system.model.setScript([turn.text('Done after recovery.')]);
    const done = nextTerminal(system);
    const queued = new Promise<string>((resolve) =>
      system.cloud.events.on('task.queued', ({ reason }) => resolve(reason)),
    );
    const msg = await mention('code add a health check');
    // The thread says why, from the agent's own reading: CPU over its threshold for a whole window.
    expect(await queued).toBe('agent agent-1 is busy: CPU 99 % for 30s; your task is next');
    const waiting = await system.cloud.repos.tasks.findByThread(system.channel, msg.ts);
    expect(waiting?.status).toBe('queued');
    expect(await system.cloud.repos.offlineQueue.findByTask(waiting!.id)).toBeDefined();

    system.resources.cpuPercent = 5;
    system.agent.resources.sample();
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(task.id).toBe(waiting!.id);
  });
});

describe('agent disconnect: tasks wait in the offline queue and run when the agent reconnects', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem({ startAgent: false, settings: { BEMATIC_PROGRESS_INTERVAL_MS: '200' } });
  });
  afterAll(() => system?.close());

  it('queues with an offline notice, then drains in priority order on reconnect', async () => {
    explainOnFailure(system);
    system.model.setScript([turn.text('first done'), turn.text('second done')]);
    let queuedCount = 0;
    const bothQueued = new Promise<void>((resolve) =>
      system.cloud.events.on('task.queued', () => {
        queuedCount += 1;
        if (queuedCount === 2) resolve();
      }),
    );
    const normal = await system.emulator.mention({
      user: USER,
      channel: system.channel,
      text: 'code add logging',
    });
    const urgent = await system.emulator.mention({
      user: USER,
      channel: system.channel,
      text: 'code fix prod outage --priority urgent',
    });
    await bothQueued;
    const normalTask = await system.cloud.repos.tasks.findByThread(system.channel, normal.ts);
    const urgentTask = await system.cloud.repos.tasks.findByThread(system.channel, urgent.ts);
    expect(normalTask?.status).toBe('queued');
    expect(urgentTask?.priority).toBe('urgent');
    const queue = await system.cloud.repos.offlineQueue.listForAgent('agent-1');
    expect(queue.map((q) => q.taskId)).toEqual([urgentTask!.id, normalTask!.id]);
    // The notice is posted by the command service right after dispatch.
    const notice = await system.emulator.waitFor(() =>
      system.emulator.thread(system.channel, normal.ts).find((m) => /offline/i.test(m.readable)),
    );
    expect(notice.readable).toMatch(/queued/i);

    // Each task's own terminal event: one that fails says why here instead of leaving the test waiting.
    const urgentEnd = nextTerminal(system, (t) => t.id === urgentTask!.id);
    const normalEnd = nextTerminal(system, (t) => t.id === normalTask!.id);
    const started: string[] = [];
    system.cloud.events.on('task.started', ({ task }) => void started.push(task.id));
    await system.startAgent();
    for (const { event, task } of await Promise.all([urgentEnd, normalEnd])) {
      expect({ event, errorCode: task.errorCode, error: task.errorMessage }).toEqual({
        event: 'task.completed',
        errorCode: null,
        error: null,
      });
    }
    expect(started[0]).toBe(urgentTask!.id);
    expect(await system.cloud.repos.offlineQueue.listForAgent('agent-1')).toEqual([]);
  });
});
