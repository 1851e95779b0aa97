import type { Message, MessageType } from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { TerminalStore } from './terminal-store.js';

export interface OutboundTransport {
  isReady(): boolean;
  /** Resolves once the frame is written to the socket; rejects if it was not. */
  send(message: Message): Promise<void>;
}

export const TERMINAL_TYPES: readonly MessageType[] = ['TASK_COMPLETE', 'TASK_ERROR', 'TASK_CANCELLED'];
const DROPPABLE_ORDER: readonly MessageType[] = ['TASK_STREAM', 'TASK_PROGRESS'];

export interface OutboundBufferOptions {
  transport: OutboundTransport;
  /** Most TASK_STREAM + TASK_PROGRESS frames held while offline; oldest stream chunks go first. */
  maxDroppable?: number;
  store?: TerminalStore;
  logger?: Logger;
}

interface Entry {
  message: Message;
  terminal: boolean;
  inflight: boolean;
  /** The connection (see `reconnected`) this terminal message was last written on; it waits for its ack. */
  sentOn: number | null;
}

const taskIdOf = (m: Message): string | undefined =>
  typeof m.payload === 'object' && m.payload !== null && 'taskId' in m.payload ? m.payload.taskId : undefined;

const attemptOf = (m: Message): number | undefined =>
  typeof m.payload === 'object' &&
  m.payload !== null &&
  'attempt' in m.payload &&
  typeof m.payload.attempt === 'number'
    ? m.payload.attempt
    : undefined;

/**
 * Every task message the agent sends goes through here, in order. While the
 * cloud is unreachable they wait; after the next successful auth `reconnected()`
 * sends them in the order they were produced. Terminal messages are never
 * dropped: a written one stays (in memory and in the journal) until the cloud's
 * TASK_RESULT_ACK says it is committed, and is written again on every new
 * connection until then — a write the socket accepted can still be lost with
 * the connection or with the cloud before its commit.
 */
export class OutboundBuffer {
  private entries: Entry[] = [];
  /** Counts connections: a terminal message is resent once per connection until acknowledged. */
  private connection = 0;
  private readonly maxDroppable: number;
  private readonly log: Logger;
  private droppedCount = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: OutboundBufferOptions) {
    this.maxDroppable = options.maxDroppable ?? 5000;
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'outbound-buffer' });
    for (const message of options.store?.load() ?? []) {
      this.entries.push({ message, terminal: true, inflight: false, sentOn: null });
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** Stream/progress frames discarded because the buffer was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Task ids whose terminal message the cloud has not acknowledged yet. */
  bufferedTaskIds(): string[] {
    const ids = new Set<string>();
    for (const e of this.entries) {
      const id = e.terminal ? taskIdOf(e.message) : undefined;
      if (id !== undefined) ids.add(id);
    }
    return [...ids];
  }

  enqueue(message: Message): void {
    const terminal = TERMINAL_TYPES.includes(message.type);
    if (terminal) this.options.store?.add(message);
    // Only the newest status matters; an older one waiting would be stale on arrival.
    if (message.type === 'AGENT_STATUS') {
      this.entries = this.entries.filter((e) => e.inflight || e.message.type !== 'AGENT_STATUS');
    }
    this.entries.push({ message, terminal, inflight: false, sentOn: null });
    if (this.options.transport.isReady()) this.flush();
    else this.enforceCap();
  }

  /**
   * A new authenticated connection: everything waiting goes out, and every terminal message not acknowledged
   * yet is written again (the cloud treats a repeat as a duplicate and acknowledges it).
   */
  reconnected(): void {
    this.connection += 1;
    this.flush();
  }

  /** The cloud committed the task's terminal message (TASK_RESULT_ACK): forget it, here and in the journal. */
  acknowledge(taskId: string): boolean {
    const acked = this.entries.filter((e) => e.terminal && taskIdOf(e.message) === taskId);
    if (acked.length === 0) return false;
    this.entries = this.entries.filter((e) => !acked.includes(e));
    for (const e of acked) this.options.store?.done(e.message.id);
    this.notifyIdle();
    return true;
  }

  /**
   * The cloud sent the task again with a newer attempt while this agent holds it: what is still to be sent
   * about it carries the new attempt, or the cloud would ignore it as stale; an unacknowledged terminal
   * message is written again.
   */
  restamp(taskId: string, attempt: number): void {
    let changed = false;
    for (const entry of this.entries) {
      if (taskIdOf(entry.message) !== taskId) continue;
      const current = attemptOf(entry.message);
      if (current === undefined || current >= attempt) continue;
      entry.message = { ...entry.message, payload: { ...entry.message.payload, attempt } } as Message;
      if (entry.terminal) {
        this.options.store?.add(entry.message);
        entry.sentOn = null;
        changed = true;
      }
    }
    if (changed) this.flush();
  }

  /** Sends everything waiting, in order (terminal messages not yet written on this connection). */
  flush(): void {
    const { transport } = this.options;
    if (!transport.isReady()) return;
    const keep: Entry[] = [];
    for (const entry of this.entries) {
      if (entry.inflight || (entry.terminal && entry.sentOn === this.connection)) {
        keep.push(entry);
        continue;
      }
      if (!entry.terminal) {
        transport.send(entry.message).catch(() => {
          // Non-terminal frames are best effort; the terminal one carries the result.
        });
        continue;
      }
      entry.inflight = true;
      const on = this.connection;
      const written = entry.message;
      keep.push(entry);
      transport.send(written).then(
        () => {
          entry.inflight = false;
          // Restamped while the write was under way: the new attempt still has to go out.
          if (entry.message === written) entry.sentOn = on;
          else this.flush();
        },
        (err: unknown) => {
          entry.inflight = false;
          this.log.info({ err: String(err), type: entry.message.type }, 'terminal message kept for retry');
        },
      );
    }
    this.entries = keep;
    this.notifyIdle();
  }

  /** Resolves when nothing is waiting, in flight or unacknowledged. */
  whenEmpty(): Promise<void> {
    if (this.entries.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    if (this.entries.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private enforceCap(): void {
    let droppable = this.entries.filter((e) => DROPPABLE_ORDER.includes(e.message.type)).length;
    for (const type of DROPPABLE_ORDER) {
      while (droppable > this.maxDroppable) {
        const i = this.entries.findIndex((e) => e.message.type === type && !e.inflight);
        if (i < 0) break;
        this.entries.splice(i, 1);
        droppable -= 1;
        this.droppedCount += 1;
      }
    }
  }
}
