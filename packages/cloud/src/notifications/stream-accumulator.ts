import { type Clock, systemClock } from '@bematic/protocol';
import type { ChatMessage } from '../chat/chat-surface.js';
import { retryAfterMs } from './retry-after.js';

export interface StreamAccumulatorOptions {
  /** Renders the current state; called only when an update is about to be sent. */
  render(now: number): ChatMessage;
  /** Sends one update of the task's single progress message. */
  send(message: ChatMessage): Promise<void>;
  /** At most one update per this interval (default 3 s). */
  minIntervalMs?: number;
  /** Re-render this often while idle so the elapsed time moves (0 disables; default 15 s). */
  refreshMs?: number;
  /** Attempts for the final update before giving up (default 6). */
  maxFinalAttempts?: number;
  clock?: Clock;
  onError?(err: unknown): void;
}

/**
 * Coalesces a task's progress and streamed text into updates of one message:
 * at most one update per interval, only when something changed, never two
 * updates in flight, failed updates (429) retried after Retry-After, and a
 * final update that lands even after failures.
 */
export class StreamAccumulator {
  private readonly minIntervalMs: number;
  private readonly refreshMs: number;
  private readonly maxFinalAttempts: number;
  private readonly clock: Clock;
  private dirty = false;
  private finished = false;
  private timer: unknown = null;
  private refreshTimer: unknown = null;
  private inFlight: Promise<void> | null = null;
  private nextAllowedAt = 0;
  private lastSentKey: string | null = null;
  /** Updates sent successfully (metrics: Slack calls per task). */
  sentCount = 0;

  constructor(private readonly opts: StreamAccumulatorOptions) {
    this.minIntervalMs = opts.minIntervalMs ?? 3000;
    this.refreshMs = opts.refreshMs ?? 15_000;
    this.maxFinalAttempts = opts.maxFinalAttempts ?? 6;
    this.clock = opts.clock ?? systemClock;
    this.armRefresh();
  }

  /** Something visible changed (status, step, text). */
  changed(): void {
    if (this.finished) return;
    this.dirty = true;
    this.schedule();
  }

  private armRefresh(): void {
    if (this.refreshMs <= 0 || this.finished) return;
    this.refreshTimer = this.clock.setTimeout(() => {
      this.refreshTimer = null;
      this.changed();
      this.armRefresh();
    }, this.refreshMs);
  }

  private schedule(): void {
    if (this.finished || this.inFlight || this.timer !== null) return;
    const delay = Math.max(0, this.nextAllowedAt - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.flush();
    }, delay);
  }

  private flush(): void {
    if (this.finished || !this.dirty || this.inFlight) return;
    const message = this.opts.render(this.clock.now());
    const key = JSON.stringify(message);
    this.dirty = false;
    if (key === this.lastSentKey) return;
    this.nextAllowedAt = this.clock.now() + this.minIntervalMs;
    this.inFlight = this.opts
      .send(message)
      .then(() => {
        this.lastSentKey = key;
        this.sentCount++;
      })
      .catch((err: unknown) => {
        this.opts.onError?.(err);
        this.dirty = true;
        this.nextAllowedAt = this.clock.now() + Math.max(this.minIntervalMs, retryAfterMs(err) ?? 0);
      })
      .finally(() => {
        this.inFlight = null;
        if (this.dirty) this.schedule();
      });
  }

  private wait(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.clock.setTimeout(resolve, ms);
    });
  }

  /**
   * Stops throttled updates and sends the final state, waiting out the
   * interval and any Retry-After. Resolves true once it landed.
   */
  async finish(final: ChatMessage): Promise<boolean> {
    this.finished = true;
    this.stopTimers();
    for (let attempt = 1; attempt <= this.maxFinalAttempts; attempt++) {
      while (this.inFlight) await this.inFlight;
      await this.wait(this.nextAllowedAt - this.clock.now());
      try {
        this.nextAllowedAt = this.clock.now() + this.minIntervalMs;
        await this.opts.send(final);
        this.sentCount++;
        this.lastSentKey = JSON.stringify(final);
        return true;
      } catch (err) {
        this.opts.onError?.(err);
        this.nextAllowedAt = this.clock.now() + Math.max(this.minIntervalMs, retryAfterMs(err) ?? 0);
      }
    }
    return false;
  }

  private stopTimers(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    if (this.refreshTimer !== null) this.clock.clearTimeout(this.refreshTimer);
    this.timer = null;
    this.refreshTimer = null;
  }

  /** Drops pending updates without a final one (e.g. the task row vanished). */
  dispose(): void {
    this.finished = true;
    this.stopTimers();
  }
}
