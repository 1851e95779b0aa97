import type { TaskMetrics, TaskSubmit } from '@bematic/protocol';
import { type Clock, systemClock, ZERO_TASK_METRICS } from '@bematic/protocol';
import type { ExecutionOutcome, ExecutionSink, Executor } from './executor.js';

export interface SleepExecutorOptions {
  /** How long each task "works". 0 finishes on the next tick. */
  durationMs?: number;
  /** A prompt containing this resolves `failed` (EXECUTION_FAILED). */
  failMarker?: string;
  /** A prompt containing this makes execute() reject, as a buggy executor would. */
  throwMarker?: string;
  clock?: Clock;
}

/** `[sleep:250]` in a prompt overrides the duration for that task. */
const SLEEP_OVERRIDE = /\[sleep:(\d+)\]/;

const zeroMetrics = (durationMs: number): TaskMetrics => ({ ...ZERO_TASK_METRICS, durationMs });

/**
 * An executor that does no work: it reports a step, streams a line and waits.
 * Used by tests and benchmarks to exercise everything around the model.
 */
export class SleepExecutor implements Executor {
  private readonly durationMs: number;
  private readonly failMarker: string;
  private readonly throwMarker: string;
  private readonly clock: Clock;

  constructor(options: SleepExecutorOptions = {}) {
    this.durationMs = options.durationMs ?? 0;
    this.failMarker = options.failMarker ?? '[fail]';
    this.throwMarker = options.throwMarker ?? '[throw]';
    this.clock = options.clock ?? systemClock;
  }

  async execute(task: TaskSubmit, sink: ExecutionSink, signal: AbortSignal): Promise<ExecutionOutcome> {
    const started = this.clock.now();
    const override = SLEEP_OVERRIDE.exec(task.prompt)?.[1];
    const duration = override !== undefined ? Number(override) : this.durationMs;
    const text = `Working on: ${task.prompt.slice(0, 200)}\n`;
    sink.progress({ kind: 'status', message: `Sleeping ${duration} ms` });
    sink.stream(text);
    if (task.prompt.includes(this.throwMarker)) throw new Error('sleep executor told to throw');

    const aborted = await new Promise<boolean>((resolve) => {
      if (signal.aborted) return resolve(true);
      const onAbort = () => {
        this.clock.clearTimeout(handle);
        resolve(true);
      };
      const handle = this.clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(false);
      }, duration);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const metrics = zeroMetrics(Math.max(0, this.clock.now() - started));

    if (aborted) return { kind: 'cancelled', payload: { partialResult: text, metrics } };
    if (task.prompt.includes(this.failMarker)) {
      return {
        kind: 'failed',
        payload: {
          error: 'sleep executor told to fail',
          recoverable: false,
          errorCode: 'EXECUTION_FAILED',
          metrics,
        },
      };
    }
    return {
      kind: 'completed',
      payload: { result: `Slept ${duration} ms`, metrics, filesChanged: [], commandsRun: [] },
    };
  }
}
