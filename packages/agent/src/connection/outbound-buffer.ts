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
}

const taskIdOf = (m: Message): string | undefined =>
  typeof m.payload === 'object' && m.payload !== null && 'taskId' in m.payload ? m.payload.taskId : undefined;

/**
 * Every task message the agent sends goes through here, in order. While the
 * cloud is unreachable they wait; after the next successful auth `flush()`
 * sends them in the order they were produced. Terminal messages are never
 * dropped and leave the buffer only when the socket confirms the write.
 */
export class OutboundBuffer {
  private entries: Entry[] = [];
  private readonly maxDroppable: number;
  private readonly log: Logger;
  private droppedCount = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: OutboundBufferOptions) {
    this.maxDroppable = options.maxDroppable ?? 5000;
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'outbound-buffer' });
    for (const message of options.store?.load() ?? []) {
      this.entries.push({ message, terminal: true, inflight: false });
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** Stream/progress frames discarded because the buffer was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Task ids whose terminal message has not been delivered yet. */
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
    this.entries.push({ message, terminal, inflight: false });
    if (this.options.transport.isReady()) this.flush();
    else this.enforceCap();
  }

  /** Sends everything waiting, in order. Called after each successful auth. */
  flush(): void {
    const { transport } = this.options;
    if (!transport.isReady()) return;
    const keep: Entry[] = [];
    for (const entry of this.entries) {
      if (entry.inflight) {
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
      keep.push(entry);
      transport.send(entry.message).then(
        () => this.delivered(entry),
        (err: unknown) => {
          entry.inflight = false;
          this.log.info({ err: String(err), type: entry.message.type }, 'terminal message kept for retry');
        },
      );
    }
    this.entries = keep;
    this.notifyIdle();
  }

  /** Resolves when nothing is waiting or in flight. */
  whenEmpty(): Promise<void> {
    if (this.entries.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private delivered(entry: Entry): void {
    this.entries = this.entries.filter((e) => e !== entry);
    this.options.store?.done(entry.message.id);
    this.notifyIdle();
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
