import type { Task, TaskEventMap } from '@bematic/cloud';
import type { MessageView, TestSystem } from '@bematic/testkit';
import { onTestFailed } from 'vitest';

export type Terminal = 'task.completed' | 'task.failed' | 'task.cancelled';

/** Resolves with the next terminal event for a task matching `match` (events are emitted once per task). */
export function nextTerminal(
  system: TestSystem,
  match: (task: Task) => boolean = () => true,
): Promise<{ event: Terminal; task: Task }> {
  return new Promise((resolve) => {
    const offs: Array<() => void> = [];
    for (const event of ['task.completed', 'task.failed', 'task.cancelled'] as const) {
      offs.push(
        system.cloud.events.on(event, (payload: TaskEventMap[Terminal]) => {
          if (!match(payload.task)) return;
          for (const off of offs) off();
          resolve({ event, task: payload.task });
        }),
      );
    }
  });
}

/**
 * If the running test fails (a timeout included), prints where each task of the system stands and its audit
 * trail, so a failure seen only on a busy machine can be read from the log.
 */
export function explainOnFailure(system: TestSystem): void {
  onTestFailed(async () => {
    for (const task of await system.cloud.repos.tasks.list()) {
      const audit = await system.cloud.repos.audit.list({ resourceId: task.id });
      const trail = audit.map((a) => `${a.action}${a.details.code ? `:${String(a.details.code)}` : ''}`);
      console.error(
        `task ${task.id} ${task.status} attempt=${task.attempt} agent=${task.agentId} ` +
          `error=${task.errorCode ?? '-'} outbox=${(await system.cloud.repos.offlineQueue.findByTask(task.id)) ? 'row' : 'none'} ` +
          `audit=[${trail.join(', ')}]`,
      );
    }
  });
}

/** Every terminal event, for asserting "exactly once". */
export function recordTerminals(system: TestSystem): Array<{ event: Terminal; taskId: string }> {
  const seen: Array<{ event: Terminal; taskId: string }> = [];
  for (const event of ['task.completed', 'task.failed', 'task.cancelled'] as const) {
    system.cloud.events.on(event, ({ task }) => void seen.push({ event, taskId: task.id }));
  }
  return seen;
}

/** Waits until the notifications for everything so far have reached Slack, then reads the thread. */
export async function readThread(system: TestSystem, threadTs: string): Promise<MessageView[]> {
  await system.cloud.notifications.idle();
  return system.emulator.thread(system.channel, threadTs);
}

export function buttonValue(message: MessageView | undefined, actionId: string): string | undefined {
  for (const block of message?.blocks ?? []) {
    const elements = (block as { elements?: Array<{ action_id?: string; value?: string }> }).elements ?? [];
    const button = elements.find((e) => e.action_id === actionId);
    if (button) return button.value;
  }
  return undefined;
}

export const reactionNames = (m: MessageView | undefined) => (m?.reactions ?? []).map((r) => r.name).sort();
