import { type Clock, systemClock, type TimerHandle } from '@bematic/protocol';
import type { ChatMessage } from '../chat/chat-surface.js';
import { type ScheduledMessage, UpdateScheduler } from './update-scheduler.js';

export interface StreamAccumulatorOptions {
  /** The channel of the task's message (the scheduler keeps one channel to Slack's per-channel limit). */
  channelId?: string;
  /** The chat message it updates, once known (see ScheduledMessage.key). */
  key?: () => string | undefined;
  /** Renders the current state; called only when an update is about to be sent. */
  render(now: number): ChatMessage;
  /** Sends one update of the task's single progress message. */
  send(message: ChatMessage): Promise<void>;
  /**
   * When the message was last changed, if it exists already and may have been updated by another instance
   * (the first update then waits one task interval from it).
   */
  changedAt?: number;
  /** Decides when updates go out; shared by every task of one workspace. */
  scheduler?: UpdateScheduler;
  /** Without a shared scheduler: at most one update per this interval (default 3 s). */
  minIntervalMs?: number;
  /** Re-render this often while idle so the elapsed time moves (0 disables; default 15 s). */
  refreshMs?: number;
  /** Attempts for the final update before giving up (default 6). */
  maxFinalAttempts?: number;
  clock?: Clock;
  onError?(err: unknown): void;
}

/**
 * Coalesces a task's progress and streamed text into updates of one message: only the newest state is
 * rendered when the scheduler gives this task a slot, nothing is sent when nothing changed, and the final
 * update replaces whatever progress is still pending and is retried until it lands (or gives up).
 * When updates go out is the `UpdateScheduler`'s decision alone.
 */
export class StreamAccumulator implements ScheduledMessage {
  readonly channelId: string;
  readonly changedAt: number | undefined;
  private readonly scheduler: UpdateScheduler;
  private readonly refreshMs: number;
  private readonly maxFinalAttempts: number;
  private readonly clock: Clock;
  private dirty = false;
  private finished = false;
  private refreshTimer: TimerHandle | null = null;
  private lastSentKey: string | null = null;
  private finalUpdate: {
    message: ChatMessage | (() => ChatMessage);
    attempts: number;
    settle(landed: boolean): void;
  } | null = null;
  /** Updates sent successfully (metrics: Slack calls per task). */
  sentCount = 0;

  constructor(private readonly opts: StreamAccumulatorOptions) {
    this.channelId = opts.channelId ?? '';
    this.changedAt = opts.changedAt;
    this.clock = opts.clock ?? systemClock;
    this.scheduler =
      opts.scheduler ??
      new UpdateScheduler(
        { perMinute: 0, channelIntervalMs: 0, taskIntervalMs: opts.minIntervalMs ?? 3000 },
        this.clock,
      );
    this.refreshMs = opts.refreshMs ?? 15_000;
    this.maxFinalAttempts = opts.maxFinalAttempts ?? 6;
    this.armRefresh();
  }

  get key(): string | undefined {
    return this.opts.key?.();
  }

  get final(): boolean {
    return this.finalUpdate !== null;
  }

  /** Something visible changed (status, step, text). */
  changed(): void {
    if (this.finished) return;
    this.dirty = true;
    this.scheduler.want(this);
  }

  private armRefresh(): void {
    if (this.refreshMs <= 0 || this.finished) return;
    this.refreshTimer = this.clock.setTimeout(() => {
      this.refreshTimer = null;
      this.changed();
      this.armRefresh();
    }, this.refreshMs);
  }

  send(): Promise<void> | null {
    const final = this.finalUpdate;
    if (final) {
      const message = typeof final.message === 'function' ? final.message() : final.message;
      return this.opts.send(message).then(() => {
        this.sentCount++;
        this.lastSentKey = JSON.stringify(message);
        this.scheduler.forget(this);
        final.settle(true);
      });
    }
    if (this.finished || !this.dirty) return null;
    const message = this.opts.render(this.clock.now());
    const key = JSON.stringify(message);
    this.dirty = false;
    if (key === this.lastSentKey) return null;
    return this.opts.send(message).then(() => {
      this.lastSentKey = key;
      this.sentCount++;
    });
  }

  failed(err: unknown): void {
    this.opts.onError?.(err);
    const final = this.finalUpdate;
    if (final) {
      final.attempts++;
      if (final.attempts >= this.maxFinalAttempts) {
        this.scheduler.forget(this);
        final.settle(false);
        return;
      }
    } else if (this.finished) {
      return;
    } else {
      this.dirty = true;
    }
    this.scheduler.want(this);
  }

  /**
   * Stops progress updates and queues the final state ahead of every progress update of the workspace; it
   * still waits for an update in flight, the task interval and any Retry-After. Resolves true once it landed.
   * A function is rendered when the update is sent (a message other tasks draw into shows their state then).
   */
  finish(final: ChatMessage | (() => ChatMessage)): Promise<boolean> {
    this.finished = true;
    this.stopTimers();
    return new Promise<boolean>((settle) => {
      this.finalUpdate = { message: final, attempts: 0, settle };
      this.scheduler.want(this);
    });
  }

  private stopTimers(): void {
    if (this.refreshTimer !== null) this.clock.clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  /** Drops pending updates without a final one (e.g. the task row vanished). */
  dispose(): void {
    this.finished = true;
    this.stopTimers();
    this.scheduler.forget(this);
    this.finalUpdate?.settle(false);
    this.finalUpdate = null;
  }
}
