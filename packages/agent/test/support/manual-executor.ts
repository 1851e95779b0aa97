// Test-only: an executor whose tasks finish when the test says so.
import type { TaskSubmit } from '@bematic/protocol';
import type {
  ExecutionOutcome,
  ExecutionPlace,
  ExecutionSink,
  Executor,
} from '../../src/executor/executor.js';

interface Run {
  task: TaskSubmit;
  sink: ExecutionSink;
  signal: AbortSignal;
  place: ExecutionPlace | undefined;
  resolve: (outcome: ExecutionOutcome) => void;
}

const metrics = {
  inputTokens: 1,
  outputTokens: 2,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  costUsd: 0.01,
  durationMs: 5,
  numTurns: 1,
  continuations: 0,
};

export class ManualExecutor implements Executor {
  readonly runs = new Map<string, Run>();
  readonly startOrder: string[] = [];
  private waiters = new Map<string, Array<(run: Run) => void>>();

  /** What the executor does when its signal aborts. */
  constructor(private readonly onAbort: 'cancel' | 'fail-late' = 'cancel') {}

  execute(
    task: TaskSubmit,
    sink: ExecutionSink,
    signal: AbortSignal,
    place?: ExecutionPlace,
  ): Promise<ExecutionOutcome> {
    return new Promise((resolve) => {
      const run = { task, sink, signal, place, resolve };
      this.runs.set(task.taskId, run);
      this.startOrder.push(task.taskId);
      signal.addEventListener('abort', () => {
        if (this.onAbort === 'cancel') resolve({ kind: 'cancelled', payload: { partialResult: 'partial' } });
        // A misbehaving executor: reports a failure some time after being aborted.
        else
          setImmediate(() =>
            resolve({
              kind: 'failed',
              payload: { error: 'aborted mid-write', recoverable: false, errorCode: 'EXECUTION_FAILED' },
            }),
          );
      });
      for (const w of this.waiters.get(task.taskId) ?? []) w(run);
      this.waiters.delete(task.taskId);
    });
  }

  started(taskId: string): Promise<Run> {
    const run = this.runs.get(taskId);
    if (run) return Promise.resolve(run);
    return new Promise((resolve) => this.waiters.set(taskId, [...(this.waiters.get(taskId) ?? []), resolve]));
  }

  complete(taskId: string, result = `done ${taskId}`): void {
    this.runs
      .get(taskId)
      ?.resolve({ kind: 'completed', payload: { result, metrics, filesChanged: ['a.ts'], commandsRun: [] } });
  }
}
