/** The UpdateScheduler before it kept queues: one scan of every message per request. The oracle for update-scheduler-reference.test.ts. */
import { type Clock, systemClock, type TimerHandle } from '@bematic/protocol';
import { retryAfterMs } from '../../src/notifications/retry-after.js';

/** The limits one workspace (one chat surface) puts on updates of task messages. */
export interface UpdateBudget {
  /** Message updates per minute in the whole workspace (Slack's chat.update tier 3: 50). 0: no limit. */
  perMinute: number;
  /** Least time between two updates in one channel (Slack: about one per second). */
  channelIntervalMs: number;
  /** Least time between two updates of one task's message (3 s). */
  taskIntervalMs: number;
}

/** What the scheduler needs from one task's message (the `StreamAccumulator`). */
export interface ScheduledMessage {
  readonly channelId: string;
  /** A final (completion, failure, cancel) update is waiting: it goes before every progress update. */
  readonly final: boolean;
  /** When the message was last changed before the scheduler knew it (the task interval counts from it). */
  readonly changedAt?: number;
  /**
   * The chat message it updates, once known (channel and ts). Several tasks can draw into one message (a
   * plan's steps, a plan redrawn after Edit): its updates never overlap, so an older state cannot land after
   * a newer one, and they keep the task interval between them, whichever task sends.
   */
  readonly key?: string | undefined;
  /** Starts the call for what is pending now, or returns null when nothing changed since the last one. */
  send(): Promise<void> | null;
  /** The call failed; `retryAfterMs` is set for a 429. The message stays pending or gives up itself. */
  failed(err: unknown, retryAfterMs: number | null): void;
}

interface Slot {
  message: ScheduledMessage;
  /** The last update sent (or tried) for this message; the task interval counts from here. */
  lastAt: number;
  inFlight: boolean;
  wanted: boolean;
  /** Order of arrival, to break ties. */
  seq: number;
  /** The message key of the call in flight. */
  sending: string | undefined;
}

/**
 * The one place that decides when a task message is updated. Per workspace it spaces updates so that
 * `perMinute` is never exceeded in any minute (one call every 60 s / perMinute), keeps one channel to
 * `channelIntervalMs` and one task to `taskIntervalMs`, and gives each free slot to a waiting final update
 * first, then to the waiting progress update that was served least recently, so 50 busy tasks share the
 * budget round-robin and none starves. A 429 pauses the whole workspace for its Retry-After.
 *
 * State lives in this process. A message this process did not just post counts as changed when it is first
 * seen (`changedAt`), so after a failover the new instance's first update waits one task interval and the
 * per-task rule holds across instances; the workspace budget is per instance (divide it among them).
 */
export class ReferenceScheduler {
  private readonly slots = new Map<ScheduledMessage, Slot>();
  private readonly channelNextAt = new Map<string, number>();
  /** Per chat message (ScheduledMessage.key): when it was last updated, and whether an update is in flight. */
  private readonly keyLastAt = new Map<string, number>();
  private readonly keyBusy = new Set<string>();
  private readonly spacingMs: number;
  private workspaceNextAt = 0;
  private pausedUntil = 0;
  private timer: TimerHandle | null = null;
  private timerAt = Number.POSITIVE_INFINITY;
  private seq = 0;
  private readonly calls = new Set<Promise<void>>();

  constructor(
    private readonly budget: UpdateBudget,
    private readonly clock: Clock = systemClock,
  ) {
    this.spacingMs = budget.perMinute > 0 ? Math.ceil(60_000 / budget.perMinute) : 0;
  }

  /** The message has something to send; it goes out when the budget, its channel and its task allow. */
  want(message: ScheduledMessage): void {
    let slot = this.slots.get(message);
    if (!slot) {
      slot = {
        message,
        lastAt: message.changedAt ?? Number.NEGATIVE_INFINITY,
        inFlight: false,
        wanted: false,
        seq: this.seq++,
        sending: undefined,
      };
      this.slots.set(message, slot);
    }
    slot.wanted = true;
    this.pump();
  }

  /** Forgets the message (its task ended or was dropped). */
  forget(message: ScheduledMessage): void {
    this.slots.delete(message);
  }

  private readyAt(slot: Slot): number {
    const key = slot.message.key;
    const keyAt = key === undefined ? undefined : this.keyLastAt.get(key);
    return Math.max(
      slot.lastAt + this.budget.taskIntervalMs,
      keyAt === undefined ? Number.NEGATIVE_INFINITY : keyAt + this.budget.taskIntervalMs,
      this.channelNextAt.get(slot.message.channelId) ?? 0,
    );
  }

  /** The slot that gets the next call: finals first, then the least recently served; null if none waits. */
  private next(now: number): { slot: Slot | null; wakeAt: number } {
    let best: Slot | null = null;
    let wakeAt = Number.POSITIVE_INFINITY;
    for (const slot of this.slots.values()) {
      if (!slot.wanted || slot.inFlight) continue;
      // Another task's update of the same message is in flight: this one follows when it settles.
      const key = slot.message.key;
      if (key !== undefined && this.keyBusy.has(key)) continue;
      const at = this.readyAt(slot);
      if (at > now) {
        wakeAt = Math.min(wakeAt, at);
        continue;
      }
      if (
        !best ||
        (slot.message.final && !best.message.final) ||
        (slot.message.final === best.message.final &&
          (slot.lastAt < best.lastAt || (slot.lastAt === best.lastAt && slot.seq < best.seq)))
      )
        best = slot;
    }
    return { slot: best, wakeAt };
  }

  private pump(): void {
    for (;;) {
      const now = this.clock.now();
      const gate = Math.max(this.pausedUntil, this.workspaceNextAt);
      if (gate > now) {
        this.wakeAt(gate);
        return;
      }
      const { slot, wakeAt } = this.next(now);
      if (!slot) {
        this.wakeAt(wakeAt);
        return;
      }
      this.start(slot, now);
    }
  }

  private start(slot: Slot, now: number): void {
    slot.wanted = false;
    const { message } = slot;
    const call = message.send();
    if (!call) return;
    slot.inFlight = true;
    slot.lastAt = now;
    const key = message.key;
    slot.sending = key;
    if (key !== undefined) {
      this.keyBusy.add(key);
      this.keyLastAt.set(key, now);
      this.pruneKeys(now);
    }
    this.workspaceNextAt = now + this.spacingMs;
    this.channelNextAt.set(message.channelId, now + this.budget.channelIntervalMs);
    const settled = call
      .catch((err: unknown) => {
        const wait = retryAfterMs(err);
        if (wait !== null) this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + wait);
        message.failed(err, wait);
      })
      .finally(() => {
        slot.inFlight = false;
        if (slot.sending !== undefined) this.keyBusy.delete(slot.sending);
        slot.sending = undefined;
        this.calls.delete(settled);
        this.pump();
      });
    this.calls.add(settled);
  }

  /** Forgets the messages whose task interval has passed (they wait for nothing any more). */
  private pruneKeys(now: number): void {
    if (this.keyLastAt.size < 1000) return;
    for (const [key, at] of this.keyLastAt)
      if (at + this.budget.taskIntervalMs <= now && !this.keyBusy.has(key)) this.keyLastAt.delete(key);
  }

  /** Resolves when no update call is in flight (tests and the benchmark step virtual time between calls). */
  async idle(): Promise<void> {
    while (this.calls.size > 0) await Promise.allSettled([...this.calls]);
  }

  private wakeAt(at: number): void {
    if (!Number.isFinite(at) || at >= this.timerAt) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.pump();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  /** Stops the timer (shutdown). */
  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.slots.clear();
    this.keyBusy.clear();
    this.keyLastAt.clear();
  }
}
