import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Clock, TimerHandle } from '@bematic/protocol';
import {
  AGENT_WS_PATH,
  type AuthFailureCode,
  type AuthRequest,
  createMessage,
  DEFAULT_AUTH_TIMEOUT_MS,
  isAgentTaskMessage,
  MAX_FRAME_BYTES,
  type Message,
  type ParseError,
  PROTOCOL_VERSION,
  parse,
  type RawFrame,
  type SystemErrorCode,
  serialize,
  serializeForVersion,
} from '@bematic/protocol';
import type { Logger } from 'pino';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { ApiKeyRejection, ApiKeyService } from '../auth/api-keys.js';
import type { AuditLogRepository } from '../db/repositories/types.js';
import { RateLimiter, type RateLimitStore } from '../limits/rate-limiter.js';
import type { AgentManager } from './agent-manager.js';
import type { MessageRouter } from './message-router.js';
import type { GatewayObserver } from './observer.js';

export const CLOSE_AUTH_FAILED = 4001;

/** The task a frame from an agent is about, for the messages whose order matters per task. */
/** The task a frame is about, when an agent sends it about one (its frames are applied in order per task). */
const taskOf = (message: Message): string | undefined =>
  isAgentTaskMessage(message) ? message.payload.taskId : undefined;

export const CLOSE_AUTH_TIMEOUT = 4008;
export const CLOSE_RATE_LIMITED = 4029;
export const CLOSE_PROTOCOL_ABUSE = 1008;

export interface AgentGatewayOptions {
  server: Server;
  apiKeys: ApiKeyService;
  audit: AuditLogRepository;
  manager: AgentManager;
  router: MessageRouter;
  logger: Logger;
  clock: Clock;
  authTimeoutMs?: number;
  /** Frames above this get a FRAME_TOO_LARGE error; frames above 4× this close the socket. */
  maxFrameBytes?: number;
  heartbeatIntervalMs: number;
  /** Told to the agent in AUTH_RESPONSE: how long its tasks outlive a lost connection here. */
  reconnectGraceMs?: number;
  /** Failed authentications per remote address + agent id per minute before refusing outright. */
  authFailuresPerMinute?: number;
  /** Invalid frames per connection per minute tolerated before the connection is closed. */
  protocolErrorsPerMinute?: number;
  /** Where failed authentications are counted (PostgreSQL: across every instance). Default: memory. */
  rateLimitStore?: RateLimitStore;
  /** Runs after a successful authentication, before the agent is registered: reconciliation. */
  onAuthenticated: (agentId: string, auth: AuthRequest) => Promise<{ cancelTaskIds: string[] }>;
  afterAuthResponse: (agentId: string, auth: AuthRequest) => Promise<void>;
  observer?: GatewayObserver;
}

/**
 * The agent WebSocket endpoint: upgrade on AGENT_WS_PATH, authentication with a
 * deadline and rate limiting, then every frame through the protocol's `parse`
 * and on to the message router, one frame at a time per connection.
 */
export class AgentGateway {
  private readonly wss: WebSocketServer;
  private readonly limiters: ConnectionLimiters;
  private connections = 0;
  private readonly sockets = new Set<WebSocket>();
  private readonly maxFrameBytes: number;
  private readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

  constructor(private readonly opts: AgentGatewayOptions) {
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    // Slightly oversized frames get a coded error and the connection survives;
    // the hard cap only protects memory from absurd frames.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.maxFrameBytes * 4 });
    this.limiters = {
      auth: new RateLimiter(
        'agent-auth-failures',
        { limit: opts.authFailuresPerMinute ?? 5, windowMs: 60_000 },
        opts.rateLimitStore,
      ),
      // A connection lives on one instance: its invalid frames are counted here.
      invalidFrames: new RateLimiter('agent-invalid-frames', {
        limit: opts.protocolErrorsPerMinute ?? 20,
        windowMs: 60_000,
      }),
    };
    this.onUpgrade = (req, socket, head) => {
      if (pathOf(req) !== AGENT_WS_PATH) return; // someone else's endpoint
      const upgradedAt = opts.clock.now();
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, upgradedAt));
    };
    opts.server.on('upgrade', this.onUpgrade);
  }

  async close(): Promise<void> {
    this.opts.server.off('upgrade', this.onUpgrade);
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private accept(ws: WebSocket, req: IncomingMessage, upgradedAt: number): void {
    const ip = req.socket.remoteAddress ?? 'unknown';
    this.sockets.add(ws);
    const key = `${++this.connections}|${ip}`;
    const conn = new Connection(ws, ip, key, this.opts, this.limiters, this.maxFrameBytes, upgradedAt);
    ws.on('close', () => {
      this.sockets.delete(ws);
      conn.closed();
    });
  }
}

interface ConnectionLimiters {
  /** Failed authentications per remote address + agent id. */
  auth: RateLimiter;
  /** Invalid frames per connection. */
  invalidFrames: RateLimiter;
}

/** One agent connection: unauthenticated until a valid AUTH_REQUEST, then routed. */
class Connection {
  private agentId: string | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** Frames waiting on `chain`; while any wait, a task frame queues behind them too. */
  private chained = 0;
  /** Per task: the frames about it, in arrival order (see onMessage). */
  private readonly taskChains = new Map<string, Promise<void>>();
  private authTimer: TimerHandle | null;
  private ended = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly ip: string,
    /** This connection's own key in the invalid-frame limiter. */
    private readonly key: string,
    private readonly opts: AgentGatewayOptions,
    private readonly limiters: ConnectionLimiters,
    private readonly maxFrameBytes: number,
    private readonly upgradedAt: number,
  ) {
    this.authTimer = opts.clock.setTimeout(() => {
      this.authTimer = null;
      if (this.agentId !== null || this.ended) return;
      void this.rejectAuth(null, 'AUTH_TIMEOUT', CLOSE_AUTH_TIMEOUT, 'authentication timeout');
    }, opts.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS);
    ws.on('message', (data: RawData) => this.onMessage(data));
    ws.on('error', (err) => this.opts.logger.warn({ err, ip, agentId: this.agentId }, 'agent socket error'));
  }

  /**
   * Ordering is per task, not per connection: the frames about one task are applied one at a time in the
   * order they came (an ACK before the COMPLETE that follows it), while frames about different tasks are
   * applied side by side, so the writes of one tick can share a commit. Everything else — authentication,
   * heartbeats, status — keeps the connection's order against every frame: it waits for all frames received
   * before it (a heartbeat answered means what came before it was applied), and task frames wait for it.
   */
  private onMessage(data: RawData): void {
    const fail = (err: unknown) =>
      this.opts.logger.error({ err, agentId: this.agentId }, 'frame handling failed');
    const parsed = this.agentId === null ? null : parse(data as RawFrame, this.parseOpts());
    const taskId = parsed?.ok ? taskOf(parsed.message) : undefined;
    if (parsed?.ok && taskId !== undefined) {
      const message = parsed.message;
      const before = [this.taskChains.get(taskId), this.chained > 0 ? this.chain : undefined];
      const next = Promise.all(before)
        .then(() => this.onMessageOf(message))
        .catch(fail);
      this.taskChains.set(taskId, next);
      void next.then(() => {
        if (this.taskChains.get(taskId) === next) this.taskChains.delete(taskId);
      });
      return;
    }
    this.chained++;
    this.chain = this.settled()
      .then(() => (parsed ? this.onParsed(parsed) : this.onFrame(data)))
      .catch(fail)
      .finally(() => {
        this.chained--;
      });
  }

  private parseOpts() {
    return { maxBytes: this.maxFrameBytes };
  }

  /** Settles when every frame received so far has been handled. */
  private settled(): Promise<void> {
    return Promise.all([this.chain, ...this.taskChains.values()]).then(() => undefined);
  }

  closed(): void {
    this.ended = true;
    this.stopAuthTimer();
    void this.limiters.invalidFrames.reset(this.key);
    const agentId = this.agentId;
    if (agentId === null) return;
    this.chain = this.settled().then(() =>
      this.opts.manager
        .handleClose(agentId, this.ws, 'connection closed')
        .catch((err: unknown) => this.opts.logger.error({ err, agentId }, 'offline handling failed')),
    );
  }

  private async onFrame(data: RawData): Promise<void> {
    if (this.ended) return;
    await this.onParsed(parse(data as RawFrame, this.parseOpts()));
  }

  private async onParsed(result: ReturnType<typeof parse>): Promise<void> {
    if (this.ended) return;
    if (this.agentId === null) {
      await this.authenticate(result.ok ? result.message : null, result.ok ? null : result.error);
      return;
    }
    if (!result.ok) {
      await this.protocolError(result.error.code, result.error.message, result.error.id, {
        type: result.error.type,
      });
      return;
    }
    await this.onMessageOf(result.message);
  }

  private async onMessageOf(message: Message): Promise<void> {
    if (this.ended || this.agentId === null) return;
    const problem = await this.opts.router.route(this.agentId, message);
    if (problem) await this.protocolError(problem.code, problem.message, message.id, { type: message.type });
  }

  private async authenticate(message: Message | null, parseError: ParseError | null): Promise<void> {
    if (parseError?.code === 'UNSUPPORTED_VERSION' && parseError.version !== undefined) {
      // An older (or newer) agent: tell it in its own envelope version, so it can say why it stops.
      await this.rejectAuth(
        null,
        'UNSUPPORTED_PROTOCOL_VERSION',
        CLOSE_AUTH_FAILED,
        `this cloud speaks protocol version ${PROTOCOL_VERSION}, the agent ${parseError.version}: upgrade the older side`,
        { peerVersion: parseError.version, detail: parseError.type ?? null },
        parseError.version,
      );
      return;
    }
    if (message?.type !== 'AUTH_REQUEST') {
      await this.rejectAuth(
        null,
        'INVALID_FIRST_FRAME',
        CLOSE_AUTH_FAILED,
        'the first frame must be a valid AUTH_REQUEST',
        { detail: parseError ? parseError.code : (message?.type ?? null) },
      );
      return;
    }
    const auth = message.payload;
    const limitKey = `${this.ip}|${auth.agentId}`;
    if (await this.limiters.auth.isLimited(limitKey)) {
      await this.rejectAuth(
        auth.agentId,
        'RATE_LIMITED',
        CLOSE_RATE_LIMITED,
        'too many failed authentications',
      );
      return;
    }
    const verdict = await this.opts.apiKeys.verify(auth.agentId, auth.apiKey);
    if (!verdict.ok) {
      await this.limiters.auth.record(limitKey);
      const code = AUTH_CODE_OF[verdict.reason];
      const shown =
        verdict.reason === 'expired' || verdict.reason === 'revoked'
          ? `API key ${verdict.reason}`
          : 'invalid agent id or API key';
      await this.rejectAuth(auth.agentId, code, CLOSE_AUTH_FAILED, shown, { detail: verdict.reason });
      return;
    }
    await this.limiters.auth.reset(limitKey);
    this.stopAuthTimer();
    if (this.ended) return;
    const agentId = auth.agentId;
    const { cancelTaskIds } = await this.opts.onAuthenticated(agentId, auth);
    if (this.ended || this.ws.readyState !== WebSocket.OPEN) return;
    this.agentId = agentId;
    const response = createMessage(
      'AUTH_RESPONSE',
      {
        success: true,
        agentId,
        heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
        ...(this.opts.reconnectGraceMs !== undefined && { reconnectGraceMs: this.opts.reconnectGraceMs }),
        cancelTaskIds,
      },
      this.opts.clock.now(),
    );
    if (!this.sendFrame(response)) return;
    this.opts.observer?.observeWsConnect?.(Math.max(0, this.opts.clock.now() - this.upgradedAt));
    await this.opts.audit.log({
      action: 'agent.authenticated',
      actor: `agent:${agentId}`,
      resourceType: 'agent',
      resourceId: agentId,
      details: {
        ip: this.ip,
        keyId: verdict.record.id,
        version: auth.agentVersion,
        hostname: auth.hostname ?? null,
        sandbox: auth.sandbox ?? 'unknown',
      },
    });
    await this.opts.afterAuthResponse(agentId, auth);
    if (this.ended) return;
    await this.opts.manager.register({
      agentId,
      socket: this.ws,
      remoteAddress: this.ip,
      hostname: auth.hostname ?? null,
      version: auth.agentVersion,
      maxConcurrentTasks: auth.maxConcurrentTasks,
      sandbox: auth.sandbox ?? null,
    });
  }

  private async rejectAuth(
    agentId: string | null,
    reason: AuthFailureCode,
    closeCode: number,
    shown: string,
    details: Record<string, unknown> = {},
    peerVersion?: number,
  ): Promise<void> {
    this.stopAuthTimer();
    this.ended = true;
    this.opts.logger.warn({ agentId, ip: this.ip, reason, ...details }, 'agent authentication failed');
    if (this.ws.readyState === WebSocket.OPEN) {
      const refusal = createMessage(
        'AUTH_RESPONSE',
        { success: false, code: reason, error: shown.slice(0, 500) },
        this.opts.clock.now(),
      );
      this.sendFrame(refusal, peerVersion);
      // The close reason is limited to 123 bytes; the code alone says it all.
      this.ws.close(closeCode, reason);
    }
    await this.auditFailure('agent.auth_failed', agentId, {
      agentId,
      ip: this.ip,
      reason,
      code: reason,
      ...details,
    });
  }

  /** Audits a refusal on this connection; a failed write is logged, and the refusal goes on. */
  private async auditFailure(action: string, agentId: string | null, details: Record<string, unknown>) {
    await this.opts.audit
      .log({
        action,
        actor: agentId ? `agent:${agentId}` : 'unknown',
        resourceType: 'agent',
        resourceId: agentId,
        details,
      })
      .catch((err: unknown) => this.opts.logger.error({ err }, 'audit write failed'));
  }

  /** Reports a bad frame back and audits it; only sustained abuse closes the connection. */
  private async protocolError(
    code: SystemErrorCode,
    message: string,
    refId: string | undefined,
    extra: Record<string, unknown>,
  ): Promise<void> {
    const agentId = this.agentId;
    const reply = createMessage(
      'SYSTEM_ERROR',
      { code, message: message.slice(0, 2000), ...(refId !== undefined && { refId }) },
      this.opts.clock.now(),
    );
    // Audited before it is answered: the entry is committed by the time the agent reads the refusal.
    await this.auditFailure('agent.protocol_error', agentId, {
      code,
      message: message.slice(0, 500),
      ip: this.ip,
      ...extra,
    });
    this.sendFrame(reply);
    if (!(await this.limiters.invalidFrames.tryAcquire(this.key))) {
      this.opts.logger.warn({ agentId, ip: this.ip }, 'closing connection after repeated invalid frames');
      this.ws.close(CLOSE_PROTOCOL_ABUSE, 'too many invalid frames');
    }
  }

  /** The one place this connection writes a frame before registration: validated, never a bad frame. */
  private sendFrame(message: Message, peerVersion?: number): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(
        peerVersion === undefined ? serialize(message) : serializeForVersion(message, peerVersion),
      );
      return true;
    } catch (err) {
      this.opts.logger.error(
        { err, type: message.type, agentId: this.agentId },
        'refused to send an invalid frame',
      );
      return false;
    }
  }

  private stopAuthTimer(): void {
    if (this.authTimer !== null) this.opts.clock.clearTimeout(this.authTimer);
    this.authTimer = null;
  }
}

const AUTH_CODE_OF: Record<ApiKeyRejection, AuthFailureCode> = {
  malformed: 'INVALID_KEY',
  'unknown-key': 'INVALID_KEY',
  'wrong-agent': 'UNKNOWN_AGENT',
  revoked: 'KEY_REVOKED',
  expired: 'KEY_EXPIRED',
};

function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return '';
  }
}
