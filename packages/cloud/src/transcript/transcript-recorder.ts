import { KeyedSequence, type TaskProgress } from '@bematic/protocol';
import type { Logger } from 'pino';
import type { NewTaskStep, TaskStepRepository } from '../db/repositories/types.js';
import type { TaskEvents } from '../tasks/task-events.js';

export type StepListener = (change: { taskId: string }) => void;

/** A checklist an agent may attach to progress (Claude Code's TodoWrite), if it sends one. */
interface PlanItem {
  content: string;
  status: string;
}

/**
 * Keeps every task's transcript: each progress step and the streamed text,
 * written in arrival order per task, so the task page can show what the task
 * did after it ended (or after a restart).
 */
export class TranscriptRecorder {
  /** Each task's writes in arrival order. */
  private readonly writes = new KeyedSequence();
  private readonly listeners = new Set<StepListener>();

  constructor(
    private readonly steps: TaskStepRepository,
    private readonly logger: Logger,
  ) {}

  attach(events: TaskEvents): () => void {
    const offs = [
      events.on('task.progress', ({ task, progress }) => this.enqueue(task.id, () => this.record(progress))),
      events.on('task.stream', ({ task, text }) =>
        this.enqueue(task.id, () => this.steps.appendText(task.id, text)),
      ),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  subscribe(listener: StepListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once every write queued so far has been made (shutdown, tests). */
  async flush(): Promise<void> {
    await this.writes.settled();
  }

  private async record(p: TaskProgress): Promise<void> {
    if (p.result !== undefined && p.toolUseId !== undefined) {
      const merged = await this.steps.mergeDetail(p.taskId, p.toolUseId, {
        result: p.result,
        isError: p.isError === true,
      });
      if (merged) return;
    }
    await this.steps.append(toStep(p));
  }

  private enqueue(taskId: string, write: () => Promise<unknown>): void {
    void this.writes.run(taskId, async () => {
      try {
        await write();
      } catch (err) {
        this.logger.warn({ err, taskId }, 'transcript step not stored');
        return;
      }
      for (const l of this.listeners) l({ taskId });
    });
  }
}

function toStep(p: TaskProgress): NewTaskStep {
  const extra = p as TaskProgress & {
    plan?: PlanItem[];
    todos?: PlanItem[];
    input?: string;
    result?: string;
  };
  const items = extra.plan ?? extra.todos;
  if (Array.isArray(items)) {
    return { taskId: p.taskId, kind: 'plan', tool: p.tool ?? null, message: p.message, detail: { items } };
  }
  const detail: Record<string, unknown> = {};
  if (p.toolUseId !== undefined) detail.toolUseId = p.toolUseId;
  if (p.input !== undefined) detail.input = p.input;
  if (p.result !== undefined) detail.result = p.result;
  if (p.isError !== undefined) detail.isError = p.isError;
  return {
    taskId: p.taskId,
    kind: p.kind,
    tool: p.tool ?? null,
    message: p.message,
    detail: Object.keys(detail).length > 0 ? detail : null,
  };
}
