import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';

export type EnvelopeType = 'events_api' | 'slash_commands' | 'interactive';

export interface Ack {
  envelopeId: string;
  /** What the app sent back with its ack ({} for a bare ack). */
  payload: Record<string, unknown>;
}

export class AckTimeoutError extends Error {
  readonly code = 'SLACK_EMULATOR_ACK_TIMEOUT';
  constructor(
    readonly envelopeId: string,
    readonly envelopeType: EnvelopeType,
    timeoutMs: number,
  ) {
    super(`the app did not ack ${envelopeType} envelope ${envelopeId} within ${timeoutMs}ms`);
  }
}

interface PendingAck {
  type: EnvelopeType;
  resolve(ack: Ack): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export const SOCKET_MODE_PATH = '/socket-mode';

/** The Socket Mode side of the emulator: single-use connection tickets, hello, envelopes and their acks. */
export class SocketModeEndpoint {
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly tickets = new Set<string>();
  private readonly sockets = new Set<WebSocket>();
  private readonly pending = new Map<string, PendingAck>();
  private readonly connectionWaiters = new Set<() => void>();
  /** Envelopes the app never acked in time. */
  readonly unacked: Array<{ envelopeId: string; type: EnvelopeType }> = [];
  connectionCount = 0;

  constructor(
    private readonly options: { appId: string; ackTimeoutMs: number; wsBaseUrl(): string; onChange(): void },
  ) {}

  issueUrl(): string {
    const ticket = randomUUID();
    this.tickets.add(ticket);
    return `${this.options.wsBaseUrl()}${SOCKET_MODE_PATH}?ticket=${ticket}&app_id=${this.options.appId}`;
  }

  get connected(): number {
    return this.sockets.size;
  }

  /** Returns false when the request is not for this endpoint. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://emulator.local');
    if (url.pathname !== SOCKET_MODE_PATH) return false;
    const ticket = url.searchParams.get('ticket') ?? '';
    if (!this.tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    return true;
  }

  private accept(ws: WebSocket): void {
    this.sockets.add(ws);
    this.connectionCount += 1;
    ws.on('message', (data) => this.onMessage(data.toString()));
    const drop = () => {
      if (this.sockets.delete(ws)) this.options.onChange();
    };
    ws.on('close', drop);
    ws.on('error', drop);
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: this.sockets.size,
        debug_info: { host: 'slack-emulator', approximate_connection_time: 18060 },
        connection_info: { app_id: this.options.appId },
      }),
    );
    for (const wake of this.connectionWaiters) wake();
    this.connectionWaiters.clear();
    this.options.onChange();
  }

  private onMessage(raw: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const { envelope_id: envelopeId, payload } = parsed as { envelope_id?: unknown; payload?: unknown };
    if (typeof envelopeId !== 'string') return;
    const waiting = this.pending.get(envelopeId);
    if (!waiting) return;
    this.pending.delete(envelopeId);
    clearTimeout(waiting.timer);
    waiting.resolve({
      envelopeId,
      payload: typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : {},
    });
  }

  waitForConnection(timeoutMs = this.options.ackTimeoutMs): Promise<void> {
    if (this.sockets.size > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.connectionWaiters.delete(wake);
        reject(new Error(`no Socket Mode connection within ${timeoutMs}ms`));
      }, timeoutMs);
      this.connectionWaiters.add(wake);
    });
  }

  /** Sends an envelope to the newest connection and resolves with the app's ack. */
  async deliver(
    type: EnvelopeType,
    payload: Record<string, unknown>,
    retry: { attempt: number; reason: string } = { attempt: 0, reason: '' },
  ): Promise<Ack> {
    await this.waitForConnection();
    const socket = [...this.sockets].at(-1);
    if (!socket) throw new Error('no Socket Mode connection');
    const envelopeId = randomUUID();
    const timeoutMs = this.options.ackTimeoutMs;
    const acked = new Promise<Ack>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(envelopeId);
        this.unacked.push({ envelopeId, type });
        reject(new AckTimeoutError(envelopeId, type, timeoutMs));
      }, timeoutMs);
      this.pending.set(envelopeId, { type, resolve, reject, timer });
    });
    socket.send(
      JSON.stringify({
        envelope_id: envelopeId,
        type,
        payload,
        accepts_response_payload: type !== 'events_api',
        ...(type === 'events_api' ? { retry_attempt: retry.attempt, retry_reason: retry.reason } : {}),
      }),
    );
    return acked;
  }

  /** Asks every client to reconnect, as Slack does when it recycles a server. */
  requestReconnect(reason = 'refresh_requested'): void {
    for (const ws of this.sockets) ws.send(JSON.stringify({ type: 'disconnect', reason }));
  }

  async close(): Promise<void> {
    for (const waiting of this.pending.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error('slack emulator stopped'));
    }
    this.pending.clear();
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
