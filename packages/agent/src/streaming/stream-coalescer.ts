import type { TaskStream } from '@bematic/protocol';
import { type Clock, systemClock, type TimerHandle } from '@bematic/protocol';

export interface StreamCoalescerOptions {
  taskId: string;
  send: (frame: Omit<TaskStream, 'attempt'>) => void;
  /** Longest time text waits before it is sent. */
  flushMs?: number;
  /** Buffered characters that trigger an immediate flush; also the largest frame. */
  maxChars?: number;
  /** How much streamed text to remember for a partial result on cancellation. */
  keepChars?: number;
  clock?: Clock;
}

/**
 * Turns per-token executor output into a few TASK_STREAM frames: text is held
 * until `flushMs` passes or `maxChars` accumulate, and `close()` flushes what is
 * left so the last chunk always precedes the terminal message. `seq` starts at
 * 0 and increases by one per frame.
 */
export class StreamCoalescer {
  private pending = '';
  private seq = 0;
  private timer: TimerHandle | undefined;
  private closed = false;
  private transcript = '';
  private readonly flushMs: number;
  private readonly maxChars: number;
  private readonly keepChars: number;
  private readonly clock: Clock;

  constructor(private readonly options: StreamCoalescerOptions) {
    this.flushMs = options.flushMs ?? 250;
    this.maxChars = Math.max(1, Math.min(options.maxChars ?? 16_000, 100_000));
    this.keepChars = options.keepChars ?? 100_000;
    this.clock = options.clock ?? systemClock;
  }

  /** Everything streamed so far (the tail, if longer than keepChars). */
  get text(): string {
    return this.transcript;
  }

  push(text: string): void {
    if (this.closed || text.length === 0) return;
    this.pending += text;
    this.transcript = (this.transcript + text).slice(-this.keepChars);
    if (this.pending.length >= this.maxChars) this.flush();
    else if (this.timer === undefined) this.timer = this.clock.setTimeout(() => this.flush(), this.flushMs);
  }

  flush(): void {
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.pending.length > 0) {
      const text = this.pending.slice(0, this.maxChars);
      this.pending = this.pending.slice(this.maxChars);
      this.options.send({ taskId: this.options.taskId, seq: this.seq++, text });
    }
  }

  /** Flushes the rest and ignores later pushes. */
  close(): void {
    this.flush();
    this.closed = true;
  }
}
