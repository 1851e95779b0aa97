import { EventEmitter } from 'node:events';
import {
  type AuthResponse,
  type Clock,
  createMessage,
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  MAX_FRAME_BYTES,
  type Message,
  parse,
  type ResourceMetrics,
  type SandboxMode,
  type SystemErrorCode,
  serialize,
  systemClock,
  type TimerHandle,
} from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import WebSocket from 'ws';
import type { Backoff } from './backoff.js';

export type ConnectionState = 'idle' | 'connecting' | 'authenticating' | 'ready' | 'waiting' | 'stopped';

/** The connection's lifecycle, as data: every allowed move from each state. */
const TRANSITIONS: Record<ConnectionState, readonly ConnectionState[]> = {
  idle: ['connecting', 'stopped'],
  connecting: ['authenticating', 'waiting', 'stopped'],
  authenticating: ['ready', 'waiting', 'stopped'],
  ready: ['waiting', 'stopped'],
  waiting: ['connecting', 'stopped'],
  stopped: [],
};

/** Silence from the cloud for this many heartbeat intervals means the link is dead. */
export const KEEPALIVE_FACTOR = 2.5;

export interface CloudConnectionOptions {
  /** The cloud instances' agent endpoints: the first is tried first, each disconnect moves to the next. */
  urls: readonly string[];
  agentId: string;
  apiKey: string;
  agentVersion: string;
  hostname: string;
  maxConcurrentTasks: number;
  /** How the agent confines commands, told to the cloud so people can see it. */
  sandbox?: SandboxMode;
  /** What the agent holds, sent in AUTH_REQUEST so the cloud can reconcile. */
  reconciliation: () => { activeTaskIds: string[]; bufferedTaskIds: string[] };
  metrics: () => ResourceMetrics;
  backoff: Backoff;
  logger?: Logger;
  clock?: Clock;
  authTimeoutMs?: number;
  /** Floor for the retry delay after the cloud rejected the credentials. */
  authFailureDelayMs?: number;
}

export interface CloudConnectionEvents {
  connecting: [{ attempt: number; url: string }];
  authenticated: [AuthResponse];
  'auth-failed': [string];
  disconnected: [{ code: number; reason: string }];
  'reconnect-scheduled': [number];
  /** Every validated frame that is not connection housekeeping (tasks, cancels…). */
  message: [Message];
}

export class NotConnectedError extends Error {
  constructor() {
    super('not connected to the cloud');
    this.name = 'NotConnectedError';
  }
}

/**
 * The agent's WebSocket link to the cloud: authenticates first, answers
 * heartbeats, watches for a silent cloud, and reconnects with backoff until
 * stopped. Only validated frames get past it.
 */
export class CloudConnection extends EventEmitter<CloudConnectionEvents> {
  private stateValue: ConnectionState = 'idle';
  private ws: WebSocket | undefined;
  private authTimer: TimerHandle | undefined;
  private keepaliveTimer: TimerHandle | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private heartbeatIntervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  private authRejected = false;
  private shutdownDelayMs: number | undefined;
  private attempts = 0;
  private lastHeard: number | undefined;
  /** Index in `urls` of the instance tried now. */
  private urlIndex = 0;
  private readonly log: Logger;
  private readonly clock: Clock;

  constructor(private readonly options: CloudConnectionOptions) {
    super();
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'cloud-connection' });
    this.clock = options.clock ?? systemClock;
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The instance connected to now, or tried next. */
  get url(): string {
    const { urls } = this.options;
    return urls[this.urlIndex % urls.length] ?? '';
  }

  /** When the last frame from the cloud arrived (clock time); undefined before the first. */
  get lastHeardAt(): number | undefined {
    return this.lastHeard;
  }

  isReady(): boolean {
    return this.stateValue === 'ready' && this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (this.stateValue !== 'idle') return;
    this.connect();
  }

  /** Closes the link and stops reconnecting. */
  async stop(): Promise<void> {
    if (this.stateValue === 'stopped') return;
    this.moveTo('stopped');
    this.clearTimer('reconnectTimer');
    this.clearTimer('authTimer');
    this.clearTimer('keepaliveTimer');
    const ws = this.ws;
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'agent stopping');
      // A peer that never answers the close handshake must not hold up shutdown.
      const t = this.clock.setTimeout(() => ws.terminate(), 2000);
      ws.once('close', () => this.clock.clearTimeout(t));
    });
  }

  /** Sends a message on the authenticated link; resolves once ws reports it written. */
  send(message: Message): Promise<void> {
    const ws = this.ws;
    if (!this.isReady() || ws === undefined) return Promise.reject(new NotConnectedError());
    let frame: string;
    try {
      frame = serialize(message);
    } catch (err) {
      this.log.error({ err: String(err), type: message.type }, 'refused to send an invalid frame');
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      ws.send(frame, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Tells the cloud a frame it sent could not be handled. */
  reportError(code: SystemErrorCode, message: string, refId?: string): void {
    this.sendRaw(
      createMessage(
        'SYSTEM_ERROR',
        { code, message: message.slice(0, 2000), ...(refId !== undefined && { refId }) },
        this.clock.now(),
      ),
    );
  }

  private moveTo(next: ConnectionState): void {
    if (!TRANSITIONS[this.stateValue].includes(next)) {
      this.log.error({ from: this.stateValue, to: next }, 'illegal connection state transition');
      return;
    }
    this.stateValue = next;
  }

  private clearTimer(name: 'authTimer' | 'keepaliveTimer' | 'reconnectTimer'): void {
    const t = this[name];
    if (t !== undefined) this.clock.clearTimeout(t);
    this[name] = undefined;
  }

  private sendRaw(message: Message): void {
    const ws = this.ws;
    if (ws?.readyState !== WebSocket.OPEN) return;
    let frame: string;
    try {
      frame = serialize(message);
    } catch (err) {
      this.log.error({ err: String(err), type: message.type }, 'refused to send an invalid frame');
      return;
    }
    ws.send(frame, (err) => {
      if (err) this.log.debug({ err, type: message.type }, 'send failed');
    });
  }

  private connect(): void {
    this.moveTo('connecting');
    this.attempts += 1;
    const url = this.url;
    this.emit('connecting', { attempt: this.attempts, url });
    this.log.info({ url, attempt: this.attempts }, 'connecting to cloud');
    const ws = new WebSocket(url, { maxPayload: MAX_FRAME_BYTES });
    this.ws = ws;
    this.authTimer = this.clock.setTimeout(() => {
      this.log.warn({ timeoutMs: this.authTimeoutMs }, 'cloud did not complete authentication in time');
      ws.terminate();
    }, this.authTimeoutMs);

    ws.on('open', () => {
      if (this.ws !== ws || this.stateValue !== 'connecting') return;
      this.moveTo('authenticating');
      const o = this.options;
      this.sendRaw(
        createMessage(
          'AUTH_REQUEST',
          {
            agentId: o.agentId,
            apiKey: o.apiKey,
            agentVersion: o.agentVersion,
            hostname: o.hostname,
            maxConcurrentTasks: o.maxConcurrentTasks,
            ...(o.sandbox !== undefined && { sandbox: o.sandbox }),
            ...o.reconciliation(),
          },
          this.clock.now(),
        ),
      );
    });
    ws.on('message', (data: WebSocket.RawData) => {
      if (this.ws === ws) this.onFrame(data);
    });
    ws.on('error', (err) => {
      this.log.warn({ err: err.message }, 'cloud connection error');
    });
    ws.on('close', (code, reason) => {
      if (this.ws === ws) this.onClose(code, reason.toString());
    });
  }

  private get authTimeoutMs(): number {
    return this.options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS;
  }

  private armKeepalive(): void {
    if (this.stateValue !== 'ready') return;
    this.clearTimer('keepaliveTimer');
    const ms = Math.round(this.heartbeatIntervalMs * KEEPALIVE_FACTOR);
    this.keepaliveTimer = this.clock.setTimeout(() => {
      this.log.warn({ silentForMs: ms }, 'no traffic from the cloud; dropping the connection');
      this.ws?.terminate();
    }, ms);
  }

  private onFrame(data: WebSocket.RawData): void {
    this.lastHeard = this.clock.now();
    this.armKeepalive();
    const result = parse(data);
    if (!result.ok) {
      this.log.warn({ error: result.error }, 'rejected a frame from the cloud');
      this.reportError(result.error.code, result.error.message, result.error.id);
      return;
    }
    const message = result.message;
    switch (message.type) {
      case 'AUTH_RESPONSE':
        this.onAuthResponse(message.payload);
        return;
      case 'HEARTBEAT_PING':
        this.sendRaw(
          createMessage(
            'HEARTBEAT_PONG',
            { seq: message.payload.seq, sentAt: message.payload.sentAt, metrics: this.options.metrics() },
            this.clock.now(),
          ),
        );
        return;
      case 'SYSTEM_SHUTDOWN':
        this.log.info(message.payload, 'cloud is shutting down');
        this.shutdownDelayMs = message.payload.reconnectInMs;
        this.ws?.close(1001, 'cloud shutting down');
        return;
      case 'SYSTEM_ERROR':
        this.log.warn(message.payload, 'cloud reported an error');
        return;
      default:
        if (this.stateValue !== 'ready') {
          this.reportError('NOT_AUTHENTICATED', `${message.type} before authentication`, message.id);
          return;
        }
        this.emit('message', message);
    }
  }

  private onAuthResponse(response: AuthResponse): void {
    if (this.stateValue !== 'authenticating') return;
    this.clearTimer('authTimer');
    if (!response.success) {
      const error = response.error ?? 'no reason given';
      this.log.error(
        { agentId: this.options.agentId, code: response.code, error },
        response.code === 'UNSUPPORTED_PROTOCOL_VERSION'
          ? 'the cloud speaks another protocol version; upgrade the older side'
          : 'the cloud rejected this agent; check BEMATIC_AGENT_ID and BEMATIC_AGENT_KEY',
      );
      this.authRejected = true;
      this.emit('auth-failed', error);
      this.ws?.close(1000, 'authentication rejected');
      return;
    }
    this.heartbeatIntervalMs = response.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.options.backoff.reset();
    this.moveTo('ready');
    this.armKeepalive();
    this.log.info({ heartbeatIntervalMs: this.heartbeatIntervalMs }, 'authenticated with the cloud');
    this.emit('authenticated', response);
  }

  private onClose(code: number, reason: string): void {
    this.clearTimer('authTimer');
    this.clearTimer('keepaliveTimer');
    this.ws = undefined;
    if (this.stateValue === 'stopped') return;
    const wasReady = this.stateValue === 'ready';
    this.moveTo('waiting');
    if (wasReady) {
      this.log.warn({ code, reason }, 'disconnected from the cloud');
      this.emit('disconnected', { code, reason });
    }
    let delay = this.shutdownDelayMs ?? this.options.backoff.next();
    // A wrong key must never turn into a tight reconnect loop.
    if (this.authRejected) delay = Math.max(delay, this.options.authFailureDelayMs ?? 1000);
    this.shutdownDelayMs = undefined;
    this.authRejected = false;
    // Another instance of the same service, if there is one: the one just left may be gone for good.
    this.urlIndex = (this.urlIndex + 1) % this.options.urls.length;
    this.log.info({ delayMs: delay, url: this.url }, 'reconnect scheduled');
    this.emit('reconnect-scheduled', delay);
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stateValue === 'waiting') this.connect();
    }, delay);
  }
}
