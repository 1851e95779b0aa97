import { type Clock, systemClock, type TimerHandle } from '@bematic/protocol';
import { retryAfterMs } from './retry-after.js';

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

/** A binary min-heap under `before` (true when a goes before b). */
class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly before: (a: T, b: T) => boolean) {}
  get size(): number {
    return this.items.length;
  }
  peek(): T | undefined {
    return this.items[0];
  }
  push(item: T): void {
    const items = this.items;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as T;
      if (!this.before(item, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }
  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= items.length) break;
      const r = l + 1;
      const child = r < items.length && this.before(items[r] as T, items[l] as T) ? r : l;
      if (!this.before(items[child] as T, last)) break;
      items[i] = items[child] as T;
      i = child;
    }
    items[i] = last;
    return top;
  }
  clear(): void {
    this.items.length = 0;
  }
}

interface Slot {
  message: ScheduledMessage;
  channel: Channel;
  /** The last update sent (or tried) for this message; the task interval counts from here. */
  lastAt: number;
  inFlight: boolean;
  wanted: boolean;
  /** Order of arrival, to break ties. */
  seq: number;
  /** The message key of the call in flight. */
  sending: string | undefined;
  /** Bumped whenever the slot's queue entries go stale (queued again, started, forgotten). */
  version: number;
  /** An entry of the current version waits in one of the queues (time, channel or message key). */
  queued: boolean;
  /** `message.final` when it was queued: a final arriving later queues it again, ahead. */
  queuedFinal: boolean;
}

/** A slot's place in a queue; stale once the slot's version moved on. */
interface Entry {
  slot: Slot;
  version: number;
  /** The earliest the slot's own and its message's task interval allow (time queue). */
  at: number;
  final: boolean;
  lastAt: number;
  seq: number;
}

/** One channel: its slots that wait only for the channel (and the budget), best first. */
interface Channel {
  nextAt: number;
  ready: Heap<Entry>;
  /** Bumped when the channel is queued again among the open channels (older places are stale). */
  version: number;
  /** The time it is queued for among the closed channels. */
  queuedAt: number;
}

interface ChannelEntry {
  channel: Channel;
  version: number;
  top: Entry;
}

/** Finals first, then the message served least recently, then order of arrival. */
const servedFirst = (a: Entry, b: Entry): boolean =>
  a.final !== b.final ? a.final : a.lastAt !== b.lastAt ? a.lastAt < b.lastAt : a.seq < b.seq;

/**
 * The one place that decides when a task message is updated. Per workspace it spaces updates so that
 * `perMinute` is never exceeded in any minute (one call every 60 s / perMinute), keeps one channel to
 * `channelIntervalMs` and one task to `taskIntervalMs`, and gives each free slot to a waiting final update
 * first, then to the waiting progress update that was served least recently, so 50 busy tasks share the
 * budget round-robin and none starves. A 429 pauses the whole workspace for its Retry-After.
 *
 * Each request costs O(log n) for n waiting messages: a waiting message sits in a time queue until its task
 * interval has passed, then in its channel's queue (finals first, then least recently served); the open
 * channels are queued by their best message, the closed ones by when they open. Entries are checked again
 * when taken (a message key that got busy or updated meanwhile sends it back), never by scanning everything.
 *
 * State lives in this process. A message this process did not just post counts as changed when it is first
 * seen (`changedAt`), so after a failover the new instance's first update waits one task interval and the
 * per-task rule holds across instances; the workspace budget is per instance (divide it among them).
 */
export class UpdateScheduler {
  private readonly slots = new Map<ScheduledMessage, Slot>();
  private readonly channels = new Map<string, Channel>();
  /** Per chat message (ScheduledMessage.key): when it was last updated, and whether an update is in flight. */
  private readonly keyLastAt = new Map<string, number>();
  private readonly keyBusy = new Set<string>();
  /** Slots that found their message's update in flight; they queue again when it settles. */
  private readonly keyWaiters = new Map<string, Entry[]>();
  /** Slots waiting for their task interval, by when it passes. */
  private readonly timeQueue = new Heap<Entry>((a, b) => a.at < b.at);
  /** Channels with a slot ready that wait for the channel interval, by when it passes. */
  private readonly closedChannels = new Heap<{ channel: Channel; at: number }>((a, b) => a.at < b.at);
  /** Channels with a slot ready and the channel free, by their best slot. */
  private readonly openChannels = new Heap<ChannelEntry>((a, b) => servedFirst(a.top, b.top));
  private readonly spacingMs: number;
  private workspaceNextAt = 0;
  private pausedUntil = 0;
  private timer: TimerHandle | null = null;
  private timerAt = Number.POSITIVE_INFINITY;
  private seq = 0;
  private pruneAt = 1000;
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
        channel: this.channel(message.channelId),
        lastAt: message.changedAt ?? Number.NEGATIVE_INFINITY,
        inFlight: false,
        wanted: false,
        seq: this.seq++,
        sending: undefined,
        version: 0,
        queued: false,
        queuedFinal: false,
      };
      this.slots.set(message, slot);
    }
    slot.wanted = true;
    if (!slot.inFlight && (!slot.queued || slot.queuedFinal !== message.final)) this.enqueue(slot);
    this.pump();
  }

  /** Forgets the message (its task ended or was dropped). */
  forget(message: ScheduledMessage): void {
    const slot = this.slots.get(message);
    if (!slot) return;
    slot.version++;
    slot.queued = false;
    this.slots.delete(message);
  }

  private channel(id: string): Channel {
    let channel = this.channels.get(id);
    if (!channel) {
      channel = {
        nextAt: 0,
        ready: new Heap<Entry>(servedFirst),
        version: 0,
        queuedAt: Number.NaN,
      };
      this.channels.set(id, channel);
    }
    return channel;
  }

  /** When the slot's own task interval and its message's allow the next update. */
  private ownReadyAt(slot: Slot): number {
    const key = slot.message.key;
    const keyAt = key === undefined ? undefined : this.keyLastAt.get(key);
    return Math.max(
      slot.lastAt + this.budget.taskIntervalMs,
      keyAt === undefined ? Number.NEGATIVE_INFINITY : keyAt + this.budget.taskIntervalMs,
    );
  }

  private valid(entry: Entry): boolean {
    return entry.slot.queued && entry.version === entry.slot.version;
  }

  private enqueue(slot: Slot): void {
    slot.version++;
    slot.queued = true;
    slot.queuedFinal = slot.message.final;
    this.timeQueue.push({
      slot,
      version: slot.version,
      at: this.ownReadyAt(slot),
      final: slot.queuedFinal,
      lastAt: slot.lastAt,
      seq: slot.seq,
    });
  }

  /** Moves the slots whose task interval passed to their channel, and the channels that opened to the open ones. */
  private admit(now: number): void {
    for (let e = this.timeQueue.peek(); e !== undefined && e.at <= now; e = this.timeQueue.peek()) {
      this.timeQueue.pop();
      if (!this.valid(e)) continue;
      const at = this.ownReadyAt(e.slot);
      if (at > now) {
        this.timeQueue.push({ ...e, at });
        continue;
      }
      const { channel } = e.slot;
      channel.ready.push(e);
      if (channel.ready.peek() === e) this.requeueChannel(channel, now);
    }
    for (let c = this.closedChannels.peek(); c !== undefined && c.at <= now; c = this.closedChannels.peek()) {
      this.closedChannels.pop();
      this.requeueChannel(c.channel, now);
    }
  }

  /** Puts the channel among the open channels under its best slot, or among the closed ones until it opens. */
  private requeueChannel(channel: Channel, now: number): void {
    let top = channel.ready.peek();
    while (top !== undefined && !this.valid(top)) {
      channel.ready.pop();
      top = channel.ready.peek();
    }
    if (top === undefined) return;
    if (channel.nextAt > now) {
      if (channel.queuedAt !== channel.nextAt) {
        channel.queuedAt = channel.nextAt;
        this.closedChannels.push({ channel, at: channel.nextAt });
      }
      return;
    }
    channel.version++;
    this.openChannels.push({ channel, version: channel.version, top });
  }

  /** The slot that gets the next call: finals first, then the least recently served; null if none waits. */
  private next(now: number): Slot | null {
    for (;;) {
      const c = this.openChannels.pop();
      if (c === undefined) return null;
      const { channel } = c;
      if (c.version !== channel.version) continue;
      const top = channel.ready.peek();
      if (top !== c.top || !this.valid(top) || channel.nextAt > now) {
        // Its best slot changed (or went stale) since it was queued: queue it again under the current one.
        this.requeueChannel(channel, now);
        continue;
      }
      channel.ready.pop();
      const { slot } = top;
      const key = slot.message.key;
      if (key !== undefined && this.keyBusy.has(key)) {
        // Another task's update of the same message is in flight: this one follows when it settles.
        const waiters = this.keyWaiters.get(key);
        if (waiters) waiters.push(top);
        else this.keyWaiters.set(key, [top]);
      } else {
        const at = this.ownReadyAt(slot);
        if (at <= now) return slot;
        // Its message was updated by another task meanwhile: it waits for the interval again.
        this.timeQueue.push({ ...top, at });
      }
      this.requeueChannel(channel, now);
    }
  }

  private pump(): void {
    for (;;) {
      const now = this.clock.now();
      const gate = Math.max(this.pausedUntil, this.workspaceNextAt);
      if (gate > now) {
        this.wakeAt(gate);
        return;
      }
      this.admit(now);
      const slot = this.next(now);
      if (!slot) {
        this.wakeAt(this.nextWake());
        return;
      }
      this.start(slot, now);
      this.requeueChannel(slot.channel, now);
    }
  }

  /** When the next queued slot's task interval or the next closed channel's interval passes. */
  private nextWake(): number {
    let e = this.timeQueue.peek();
    while (e !== undefined && !this.valid(e)) {
      this.timeQueue.pop();
      e = this.timeQueue.peek();
    }
    return Math.min(
      e?.at ?? Number.POSITIVE_INFINITY,
      this.closedChannels.peek()?.at ?? Number.POSITIVE_INFINITY,
    );
  }

  private start(slot: Slot, now: number): void {
    slot.wanted = false;
    slot.queued = false;
    slot.version++;
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
    slot.channel.nextAt = now + this.budget.channelIntervalMs;
    const settled = call
      .catch((err: unknown) => {
        const wait = retryAfterMs(err);
        if (wait !== null) this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + wait);
        message.failed(err, wait);
      })
      .finally(() => {
        slot.inFlight = false;
        if (slot.sending !== undefined) this.release(slot.sending);
        slot.sending = undefined;
        this.calls.delete(settled);
        if (slot.wanted && this.slots.get(message) === slot) this.enqueue(slot);
        this.pump();
      });
    this.calls.add(settled);
  }

  /** The message's update settled: the slots that waited for it queue for its task interval. */
  private release(key: string): void {
    this.keyBusy.delete(key);
    const waiters = this.keyWaiters.get(key);
    if (!waiters) return;
    this.keyWaiters.delete(key);
    for (const e of waiters) if (this.valid(e)) this.timeQueue.push({ ...e, at: this.ownReadyAt(e.slot) });
  }

  /** Forgets the messages whose task interval has passed (they wait for nothing any more); amortised O(1). */
  private pruneKeys(now: number): void {
    if (this.keyLastAt.size < this.pruneAt) return;
    for (const [key, at] of this.keyLastAt)
      if (at + this.budget.taskIntervalMs <= now && !this.keyBusy.has(key)) this.keyLastAt.delete(key);
    this.pruneAt = Math.max(1000, 2 * this.keyLastAt.size);
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
    this.channels.clear();
    this.keyBusy.clear();
    this.keyLastAt.clear();
    this.keyWaiters.clear();
    this.timeQueue.clear();
    this.closedChannels.clear();
    this.openChannels.clear();
  }
}
