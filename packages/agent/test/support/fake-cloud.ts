// Test-only: a minimal cloud endpoint for exercising the agent over a real WebSocket.
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  AGENT_WS_PATH,
  type AuthRequest,
  createMessage,
  type Message,
  type MessageType,
  type PayloadOf,
  parse,
  serialize,
  type TaskSubmit,
} from '@bematic/protocol';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';

export interface FakeCloudOptions {
  apiKey?: string;
  heartbeatIntervalMs?: number;
  /** Returned in AUTH_RESPONSE.cancelTaskIds. */
  cancelTaskIds?: string[];
  /** Returned in AUTH_RESPONSE.reconnectGraceMs. */
  reconnectGraceMs?: number;
  /** Answer each terminal message with TASK_RESULT_ACK, as the real cloud does once it committed it (default true). */
  ackResults?: boolean;
}

type Received = Message & { connection: number };
export type Got<T extends MessageType> = {
  v: number;
  type: T;
  id: string;
  ts: number;
  payload: PayloadOf<T>;
  connection: number;
};

export class FakeCloud extends EventEmitter<{ message: [Received]; connection: [number] }> {
  readonly received: Received[] = [];
  readonly authRequests: AuthRequest[] = [];
  /** Frames from the agent that did not parse. */
  readonly invalidFrames: string[] = [];
  private sockets = new Map<number, WebSocket>();
  private authed = new Set<number>();
  private nextConnection = 0;
  private offline = false;

  private constructor(
    private readonly wss: WebSocketServer,
    readonly options: FakeCloudOptions,
  ) {
    super();
    wss.on('connection', (ws) => this.onConnection(ws));
  }

  static async start(options: FakeCloudOptions = {}): Promise<FakeCloud> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: AGENT_WS_PATH });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    return new FakeCloud(wss, options);
  }

  /** Base URL, as BEMATIC_CLOUD_URL would be given. */
  get url(): string {
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  get connections(): number {
    return this.nextConnection;
  }

  get openSockets(): number {
    return this.sockets.size;
  }

  /** Drops every connection and refuses new ones until goOnline(). */
  goOffline(): void {
    this.offline = true;
    for (const ws of this.sockets.values()) ws.terminate();
  }

  goOnline(): void {
    this.offline = false;
  }

  /** Sends to every authenticated agent connection. */
  send<T extends MessageType>(type: T, payload: PayloadOf<T>): Message {
    const message = createMessage(type, payload) as Message;
    this.sendRaw(serialize(message));
    return message;
  }

  sendRaw(data: string | Buffer): void {
    for (const id of this.authed) this.sockets.get(id)?.send(data);
  }

  submit(task: Partial<TaskSubmit> & { taskId: string; localPath: string }): Message {
    return this.send('TASK_SUBMIT', {
      attempt: 1,
      projectId: 'p1',
      botName: 'coder',
      command: 'fix',
      prompt: 'fix it',
      systemPrompt: 'You are a coder.',
      model: 'claude-sonnet-4-5',
      allowedTools: ['Read'],
      priority: 'normal',
      ...task,
    });
  }

  ofType<T extends MessageType>(type: T, taskId?: string): Got<T>[] {
    return this.received.filter(
      (m) =>
        m.type === type && (taskId === undefined || (m.payload as { taskId?: string }).taskId === taskId),
    ) as unknown as Got<T>[];
  }

  /** Resolves with the first received message matching, waiting for it if needed. */
  waitFor<T extends MessageType>(
    type: T,
    match: (payload: PayloadOf<T>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Got<T>> {
    const test = (m: Received): boolean => m.type === type && match(m.payload as PayloadOf<T>);
    const existing = this.received.find(test);
    if (existing) return Promise.resolve(existing as unknown as Got<T>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('message', onMessage);
        reject(new Error(`fake cloud: no ${type} matching within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (m: Received) => {
        if (!test(m)) return;
        clearTimeout(timer);
        this.off('message', onMessage);
        resolve(m as unknown as Got<T>);
      };
      this.on('message', onMessage);
    });
  }

  /** Round-trips a ping: everything the agent sent before its pong has then been received. */
  async sync(): Promise<void> {
    const seq = Math.floor(Math.random() * 1e9);
    this.send('HEARTBEAT_PING', { seq, sentAt: Date.now() });
    await this.waitFor('HEARTBEAT_PONG', (p) => p.seq === seq);
  }

  async close(): Promise<void> {
    for (const ws of this.sockets.values()) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(ws: WebSocket): void {
    if (this.offline) {
      ws.terminate();
      return;
    }
    const id = ++this.nextConnection;
    this.sockets.set(id, ws);
    this.emit('connection', id);
    ws.on('close', () => {
      this.sockets.delete(id);
      this.authed.delete(id);
    });
    ws.on('message', (data: WebSocket.RawData) => {
      const result = parse(data);
      if (!result.ok) {
        this.invalidFrames.push(String(data));
        return;
      }
      const message = { ...result.message, connection: id } as Received;
      if (message.type === 'AUTH_REQUEST') {
        this.authRequests.push(message.payload);
        const ok = message.payload.apiKey === (this.options.apiKey ?? 'secret');
        ws.send(
          serialize(
            createMessage(
              'AUTH_RESPONSE',
              ok
                ? {
                    success: true,
                    agentId: message.payload.agentId,
                    heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? 15_000,
                    ...(this.options.cancelTaskIds && { cancelTaskIds: this.options.cancelTaskIds }),
                    ...(this.options.reconnectGraceMs !== undefined && {
                      reconnectGraceMs: this.options.reconnectGraceMs,
                    }),
                  }
                : { success: false, code: 'INVALID_KEY', error: 'invalid API key' },
            ) as Message,
          ),
        );
        if (ok) this.authed.add(id);
        else ws.close(4001, 'unauthorized');
      }
      if (
        this.options.ackResults !== false &&
        (message.type === 'TASK_COMPLETE' ||
          message.type === 'TASK_ERROR' ||
          message.type === 'TASK_CANCELLED')
      ) {
        const { taskId, attempt } = message.payload;
        ws.send(serialize(createMessage('TASK_RESULT_ACK', { taskId, attempt }) as Message));
      }
      this.received.push(message);
      this.emit('message', message);
    });
  }
}
