import {
  type AuthRequest,
  createMessage,
  type Message,
  type MessageType,
  PAYLOAD_SCHEMAS,
  type PayloadOf,
  parse,
  type ResourceMetrics,
  serialize,
} from '@bematic/protocol';
import WebSocket from 'ws';

/** Resource metrics a raw agent reports when it answers a ping and nothing else was given. */
export const RAW_AGENT_METRICS: ResourceMetrics = {
  cpuPercent: 10,
  memoryPercent: 20,
  rssMb: 50,
  loadAvg1m: 0.1,
  activeTasks: 0,
  queuedTasks: 0,
};

/** A payload whose attempt may be left out: the raw agent fills in the attempt of the task's latest TASK_SUBMIT. */
export type LooseAttempt<P> = P extends { attempt: number } ? Omit<P, 'attempt'> & { attempt?: number } : P;

export interface RawAgentOptions {
  /** Answer every HEARTBEAT_PING with a HEARTBEAT_PONG carrying these metrics (`true`: RAW_AGENT_METRICS). */
  answerPings?: boolean | ResourceMetrics;
  /** How long `next` waits before it rejects (default 20 s). */
  timeoutMs?: number;
}

/** What AUTH_REQUEST says; everything but the id and key has a default. */
export type RawAgentAuth = Pick<AuthRequest, 'agentId' | 'apiKey'> & Partial<AuthRequest>;

export interface RawClose {
  code: number;
  reason: string;
}

const carriesAttempt = (type: MessageType): boolean => 'attempt' in PAYLOAD_SCHEMAS[type].shape;

/**
 * A protocol client that plays an agent by hand over a raw `ws` socket: it says exactly what a test needs, nothing
 * more. Frames in and out go through the protocol's `parse`/`serialize`, so both sides are checked against the
 * zod schemas; `sendRaw` is the way to send what the schemas refuse.
 */
export class RawAgent {
  /** Messages received and not yet taken by `next`. */
  readonly received: Message[] = [];
  /** Every JSON frame as it came, including those `parse` refuses (a v1 answer). */
  readonly rawFrames: Array<{ v?: number; type?: string; payload?: unknown }> = [];
  /** The errors of the frames `parse` refused. */
  readonly invalid: string[] = [];
  /** The attempt of the latest TASK_SUBMIT received for each task. */
  readonly attempts = new Map<string, number>();
  readonly closed: Promise<RawClose>;
  private waiters: Array<{ pred: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  private readonly pongMetrics: ResourceMetrics | undefined;
  private readonly timeoutMs: number;

  private constructor(
    readonly ws: WebSocket,
    opts: RawAgentOptions,
  ) {
    this.pongMetrics = opts.answerPings === true ? RAW_AGENT_METRICS : opts.answerPings || undefined;
    this.timeoutMs = opts.timeoutMs ?? 20_000;
    ws.on('message', (data: Buffer) => this.onFrame(data));
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  /** Opens a connection and says nothing yet; messages are recorded from the first frame on. */
  static async open(url: string, opts: RawAgentOptions = {}): Promise<RawAgent> {
    const ws = new WebSocket(url);
    const agent = new RawAgent(ws, opts);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return agent;
  }

  /** Opens a connection, sends AUTH_REQUEST and waits for the AUTH_RESPONSE, whatever it says. */
  static async connect(
    url: string,
    auth: RawAgentAuth,
    opts: RawAgentOptions = {},
  ): Promise<{ agent: RawAgent; response: Message<'AUTH_RESPONSE'> }> {
    const agent = await RawAgent.open(url, opts);
    agent.send('AUTH_REQUEST', {
      agentVersion: '0.1.0',
      hostname: 'test-host',
      maxConcurrentTasks: 3,
      activeTaskIds: [],
      bufferedTaskIds: [],
      ...auth,
    });
    const response = await agent.next('AUTH_RESPONSE');
    return { agent, response };
  }

  /** `connect`, for a connection that must be accepted: throws with the refusal's code otherwise. */
  static async accepted(url: string, auth: RawAgentAuth, opts: RawAgentOptions = {}): Promise<RawAgent> {
    const { agent, response } = await RawAgent.connect(url, auth, opts);
    if (!response.payload.success) {
      await agent.close();
      throw new Error(`raw agent ${auth.agentId} refused: ${response.payload.code}`);
    }
    return agent;
  }

  private onFrame(data: Buffer): void {
    const text = data.toString();
    try {
      this.rawFrames.push(JSON.parse(text) as (typeof this.rawFrames)[number]);
    } catch {
      // not JSON: `parse` says so below
    }
    const parsed = parse(text);
    if (!parsed.ok) {
      this.invalid.push(parsed.error.message);
      return;
    }
    const message = parsed.message;
    if (message.type === 'TASK_SUBMIT') this.attempts.set(message.payload.taskId, message.payload.attempt);
    if (message.type === 'HEARTBEAT_PING' && this.pongMetrics) {
      this.send('HEARTBEAT_PONG', {
        seq: message.payload.seq,
        sentAt: message.payload.sentAt,
        metrics: this.pongMetrics,
      });
    }
    const waiter = this.waiters.find((w) => w.pred(message));
    if (waiter) {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      waiter.resolve(message);
      return;
    }
    this.received.push(message);
  }

  /** Sends through the protocol's validating serializer; a task message without an attempt gets the latest one. */
  send<T extends MessageType>(type: T, payload: LooseAttempt<PayloadOf<T>>): void {
    const p = payload as { taskId?: unknown; attempt?: unknown };
    const filled =
      typeof p.taskId === 'string' && p.attempt === undefined && carriesAttempt(type)
        ? { ...p, attempt: this.attempts.get(p.taskId) ?? 1 }
        : p;
    this.ws.send(serialize(createMessage(type, filled as PayloadOf<T>) as Message));
  }

  /** Sends bytes as they are (an object is sent as its JSON): frames the schemas would refuse. */
  sendRaw(frame: string | Buffer | object): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /**
   * The first message of `type` (already received or still to come) that `pred` accepts and no earlier call took;
   * rejects after the timeout.
   */
  next<T extends MessageType>(
    type: T,
    pred: (m: Message<T>) => boolean = () => true,
    timeoutMs = this.timeoutMs,
  ): Promise<Message<T>> {
    const match = (m: Message): boolean => m.type === type && pred(m as Message<T>);
    const i = this.received.findIndex(match);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0] as Message<T>);
    return new Promise((resolve, reject) => {
      const waiter = {
        pred: match,
        resolve: (m: Message) => {
          clearTimeout(timer);
          resolve(m as Message<T>);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The received messages of `type` not taken by `next`. */
  all<T extends MessageType>(type: T): Message<T>[] {
    return this.received.filter((m) => m.type === type) as Message<T>[];
  }

  has<T extends MessageType>(type: T, pred: (m: Message<T>) => boolean = () => true): boolean {
    return this.all(type).some(pred);
  }

  /** Closes the socket (if it is still open) and resolves with how it closed. */
  close(): Promise<RawClose> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close();
    return this.closed;
  }

  /** Drops the TCP connection without a close frame. */
  terminate(): Promise<RawClose> {
    this.ws.terminate();
    return this.closed;
  }
}
