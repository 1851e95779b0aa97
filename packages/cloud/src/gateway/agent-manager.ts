import os from 'node:os';
import type { Clock, TimerHandle } from '@bematic/protocol';
import {
  type AgentStatus,
  createMessage,
  type HeartbeatPong,
  type Message,
  type OverloadDetail,
  type ResourceMetrics,
  type SandboxMode,
  serialize,
} from '@bematic/protocol';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import type {
  AgentCounts,
  AgentHealth,
  AgentListingQuery,
  AgentPresenceHealth,
  AgentRecord,
  Repositories,
} from '../db/repositories/types.js';
import type { CircuitState, TaskEvents } from '../tasks/task-events.js';
import { CircuitBreaker, type CircuitBreakerOptions, DEFAULT_CIRCUIT_OPTIONS } from './circuit-breaker.js';
import type { AgentDirectory, AgentSnapshot, AgentSnapshotPage } from './types.js';

/** An authenticated agent connection, as handed over by the gateway. */
export interface AgentSession {
  agentId: string;
  socket: WebSocket;
  remoteAddress: string;
  hostname: string | null;
  version: string | null;
  maxConcurrentTasks: number;
  /** How the agent confines commands (null: an agent that does not say). */
  sandbox: SandboxMode | null;
}

export interface AgentManagerOptions {
  repos: Repositories;
  events: TaskEvents;
  logger: Logger;
  clock: Clock;
  heartbeatIntervalMs: number;
  /** Heartbeat intervals without any answer after which the agent is considered gone. */
  missedHeartbeatsBeforeOffline?: number;
  circuit?: Partial<CircuitBreakerOptions>;
  /** Reconnection estimate used before an agent has any disconnect history. */
  defaultReconnectEtaMs?: number;
}

interface AgentState {
  agentId: string;
  session: AgentSession | null;
  breaker: CircuitBreaker;
  overloaded: boolean;
  /** What the agent last said is busy, while overloaded. */
  overload: OverloadDetail | null;
  metrics: ResourceMetrics | null;
  lastRttMs: number | null;
  lastSeenAt: number | null;
  connectedAt: number | null;
  hostname: string | null;
  version: string | null;
  maxConcurrentTasks: number | null;
  sandbox: SandboxMode | null;
  missed: number;
  /** A ping went out and nothing has been heard since. */
  awaitingAnswer: boolean;
  pingSeq: number;
  heartbeat: TimerHandle | null;
  offlineSince: number | null;
  /** How long recent absences lasted; the reconnection estimate is their mean. */
  absences: number[];
  /** An agent that announced its shutdown may have said when it will be back. */
  announcedReturnAt: number | null;
  healthy: boolean;
  /**
   * Tasks whose TASK_SUBMIT went out on the current connection and have had no TASK_ACK yet, with the attempt
   * sent. Only these are skipped by a drain: once the agent answers (accepted or refused) the task is free to
   * be sent again when the reason clears.
   */
  awaitingAck: Map<string, number>;
}

const ABSENCE_HISTORY = 5;
const CLOSE_REPLACED = 4000;
const CLOSE_SHUTDOWN = 1001;

/**
 * The registry of connected agents: heartbeat, round-trip times, overload,
 * circuit breaker, and the single place frames are written to an agent.
 */
export class AgentManager implements AgentDirectory {
  private readonly agents = new Map<string, AgentState>();
  private readonly availableListeners: Array<(agentId: string) => void> = [];
  private readonly offlineListeners: Array<(agentId: string) => void> = [];
  private readonly missedLimit: number;
  private readonly circuitOptions: CircuitBreakerOptions;
  private closed = false;

  constructor(private readonly opts: AgentManagerOptions) {
    this.missedLimit = opts.missedHeartbeatsBeforeOffline ?? 2;
    this.circuitOptions = { ...DEFAULT_CIRCUIT_OPTIONS, ...opts.circuit };
  }

  /** Called whenever an agent becomes able to take work (authenticated, circuit closed, not overloaded). */
  onAvailable(listener: (agentId: string) => void): void {
    this.availableListeners.push(listener);
  }

  onOffline(listener: (agentId: string) => void): void {
    this.offlineListeners.push(listener);
  }

  /** Takes over an authenticated connection; a previous connection of the same agent is closed. */
  async register(session: AgentSession): Promise<void> {
    const state = this.stateOf(session.agentId);
    const previous = state.session;
    const now = this.opts.clock.now();
    if (previous) {
      this.stopHeartbeat(state);
      previous.socket.close(CLOSE_REPLACED, 'replaced by a newer connection of the same agent');
    } else if (state.offlineSince !== null) {
      state.absences = [...state.absences, now - state.offlineSince].slice(-ABSENCE_HISTORY);
    }
    Object.assign(state, {
      session,
      connectedAt: now,
      lastSeenAt: now,
      hostname: session.hostname,
      version: session.version,
      maxConcurrentTasks: session.maxConcurrentTasks,
      sandbox: session.sandbox,
      missed: 0,
      awaitingAnswer: false,
      offlineSince: null,
      announcedReturnAt: null,
      overloaded: false,
      overload: null,
      // A fresh connection always counts as becoming available, so its queue is drained.
      healthy: false,
      awaitingAck: new Map<string, number>(),
    });
    await this.opts.repos.agents.upsert({
      id: session.agentId,
      hostname: session.hostname,
      version: session.version,
      status: 'online',
      lastSeenAt: now,
    });
    this.startHeartbeat(state);
    if (!previous) this.opts.events.emit('agent.online', { agentId: session.agentId });
    state.breaker.record('success');
    this.refreshHealth(state);
  }

  /** The socket closed (or errored). Ignored when it is not the agent's current connection. */
  async handleClose(agentId: string, socket: WebSocket, reason: string): Promise<void> {
    const state = this.agents.get(agentId);
    if (!state || state.session?.socket !== socket) return;
    await this.markOffline(state, reason);
  }

  isConnected(agentId: string): boolean {
    return this.agents.get(agentId)?.session?.socket.readyState === WebSocket.OPEN;
  }

  /** Agents whose socket is open on this instance. */
  connectedAgentIds(): string[] {
    return [...this.agents.keys()].filter((id) => this.isConnected(id));
  }

  /** Online, circuit closed and not overloaded: the agent can take new work now. */
  isHealthy(agentId: string): boolean {
    const s = this.agents.get(agentId);
    return !!s && this.computeHealthy(s);
  }

  isOverloaded(agentId: string): boolean {
    return this.agents.get(agentId)?.overloaded ?? false;
  }

  circuitState(agentId: string): CircuitState {
    return this.agents.get(agentId)?.breaker.state ?? 'closed';
  }

  /** A TASK_SUBMIT of the task went out on the agent's current connection and is not answered yet. */
  isAwaitingAck(agentId: string, taskId: string): boolean {
    return this.agents.get(agentId)?.awaitingAck.has(taskId) ?? false;
  }

  /** The agent answered the task's TASK_SUBMIT (or finished it): a later send is a new decision. */
  answered(agentId: string, taskId: string): void {
    this.agents.get(agentId)?.awaitingAck.delete(taskId);
  }

  /**
   * Writes one frame to the agent. Resolves true once the socket accepted it,
   * false when the agent is not connected or the write failed (which counts
   * against its circuit).
   */
  sendToAgent(agentId: string, message: Message): Promise<boolean> {
    const state = this.agents.get(agentId);
    const socket = state?.session?.socket;
    if (!state || !socket || socket.readyState !== WebSocket.OPEN) return Promise.resolve(false);
    let frame: string;
    try {
      frame = serialize(message);
    } catch (err) {
      // A frame this process built wrongly: a bug here, not the agent's problem, and never on the wire.
      this.opts.logger.error({ agentId, err, type: message.type }, 'refused to send an invalid frame');
      return Promise.resolve(false);
    }
    if (message.type === 'TASK_SUBMIT')
      state.awaitingAck.set(message.payload.taskId, message.payload.attempt);
    return new Promise<boolean>((resolve) => {
      socket.send(frame, (err) => {
        if (err) {
          this.opts.logger.warn({ agentId, err, type: message.type }, 'send to agent failed');
          state.breaker.record('failure');
          if (message.type === 'TASK_SUBMIT') state.awaitingAck.delete(message.payload.taskId);
          resolve(false);
          return;
        }
        resolve(true);
      });
    });
  }

  /** Drops the agent's connection (an operator's kick, or a test of the reconnect path). */
  disconnect(agentId: string, reason: string): boolean {
    const socket = this.agents.get(agentId)?.session?.socket;
    if (!socket) return false;
    this.opts.logger.info({ agentId, reason }, 'disconnecting agent');
    socket.terminate();
    return true;
  }

  /** Any valid frame proves the agent is alive. */
  noteActivity(agentId: string): void {
    const state = this.agents.get(agentId);
    if (!state?.session) return;
    state.lastSeenAt = this.opts.clock.now();
    state.missed = 0;
    state.awaitingAnswer = false;
  }

  handlePong(agentId: string, pong: HeartbeatPong): void {
    const state = this.agents.get(agentId);
    if (!state?.session) return;
    const now = this.opts.clock.now();
    const rttMs = Math.max(0, now - pong.sentAt);
    state.lastRttMs = rttMs;
    state.metrics = pong.metrics;
    state.lastSeenAt = now;
    state.missed = 0;
    state.awaitingAnswer = false;
    state.breaker.record('success');
    this.opts.events.emit('agent.heartbeat', { agentId, rttMs, metrics: pong.metrics });
    this.refreshHealth(state);
  }

  handleStatus(agentId: string, status: AgentStatus): void {
    const state = this.agents.get(agentId);
    if (!state?.session) return;
    state.overloaded = status.overloaded;
    state.overload = status.overloaded ? (status.overload ?? state.overload) : null;
    state.metrics = status.metrics;
    state.maxConcurrentTasks = status.maxConcurrentTasks;
    this.opts.events.emit('agent.status', { agentId, status });
    const wasHealthy = state.healthy;
    this.refreshHealth(state);
    // "Not overloaded" is a signal to resend what it refused, even if the cloud never saw it as overloaded.
    if (!status.overloaded && wasHealthy && state.healthy) this.announceAvailable(state);
  }

  /** The agent refused a task for a reason that clears later: route around it until it reports otherwise. */
  markOverloaded(agentId: string, detail?: OverloadDetail): void {
    const state = this.agents.get(agentId);
    if (!state?.session) return;
    state.overloaded = true;
    if (detail) state.overload = detail;
    this.refreshHealth(state);
  }

  /**
   * What another instance needs to route to this agent (written to its presence row): whether it can take
   * work now, and how full it last said it is. Null when its socket is not here.
   */
  presenceOf(agentId: string): AgentPresenceHealth | null {
    const s = this.agents.get(agentId);
    if (!s?.session) return null;
    const health: AgentHealth =
      s.breaker.state !== 'closed' ? 'unreliable' : s.overloaded ? 'overloaded' : 'healthy';
    return { health, activeTasks: s.metrics?.activeTasks ?? null, maxConcurrentTasks: s.maxConcurrentTasks };
  }

  /** What the agent said is busy, while it is overloaded. */
  overloadOf(agentId: string): OverloadDetail | null {
    const state = this.agents.get(agentId);
    return state?.overloaded ? state.overload : null;
  }

  /** Someone (a freed slot) says the agent can take work again: the same listeners as becoming healthy. */
  nudge(agentId: string): void {
    const state = this.agents.get(agentId);
    if (state?.healthy) this.announceAvailable(state);
  }

  /** The agent announced it is shutting down, possibly saying when it will be back. */
  noteShutdown(agentId: string, reconnectInMs: number | undefined): void {
    const state = this.agents.get(agentId);
    if (!state) return;
    state.announcedReturnAt = reconnectInMs === undefined ? null : this.opts.clock.now() + reconnectInMs;
  }

  /** Estimated time until the agent is back: its announcement, else the mean of its recent absences. */
  reconnectEtaMs(agentId: string): number | null {
    const state = this.agents.get(agentId);
    if (state?.session) return 0;
    const now = this.opts.clock.now();
    if (state?.announcedReturnAt != null) return Math.max(0, state.announcedReturnAt - now);
    const history = state?.absences ?? [];
    if (history.length === 0) return this.opts.defaultReconnectEtaMs ?? null;
    const mean = history.reduce((a, b) => a + b, 0) / history.length;
    const away = state?.offlineSince != null ? now - state.offlineSince : 0;
    return Math.max(0, Math.round(mean - away));
  }

  /** One page from the database's index, and the live state of just those agents: O(page), not O(agents). */
  async listAgents(q: AgentListingQuery): Promise<AgentSnapshotPage> {
    const { rows, next } = await this.opts.repos.agents.page(q);
    const depth = await this.opts.repos.offlineQueue.countByAgent(rows.map((r) => r.id));
    return { agents: rows.map((r) => this.snapshot(r, depth[r.id] ?? 0)), next };
  }

  countAgents(): Promise<AgentCounts> {
    return this.opts.repos.agents.counts();
  }

  /**
   * Whether the agent is online is its row's (presence, written by whichever instance holds it), so the
   * listing's order and counts agree across pages and instances. The live facts are this instance's when it
   * holds the socket or last did; of an agent held elsewhere, only what its holder wrote to the row.
   */
  private snapshot(r: AgentRecord, offlineQueueDepth: number): AgentSnapshot {
    const online = r.status === 'online';
    const s = this.agents.get(r.id);
    const local = s && (s.session || !online) ? s : undefined;
    const held = local ? null : r.health;
    return {
      agentId: r.id,
      online,
      overloaded: local ? local.overloaded : held?.health === 'overloaded',
      circuit: local ? local.breaker.state : held?.health === 'unreliable' ? 'open' : 'closed',
      hostname: local?.hostname ?? r.hostname,
      version: local?.version ?? r.version,
      connectedAt: local?.session ? local.connectedAt : null,
      lastSeenAt: local?.lastSeenAt ?? r.lastSeenAt,
      lastRttMs: local?.lastRttMs ?? null,
      metrics: local?.metrics ?? null,
      maxConcurrentTasks: local?.maxConcurrentTasks ?? held?.maxConcurrentTasks ?? null,
      sandbox: local?.sandbox ?? null,
      offlineQueueDepth,
    };
  }

  /** Reply to an agent's own keepalive ping with the cloud's process metrics. */
  cloudMetrics(): ResourceMetrics {
    const mem = process.memoryUsage();
    const total = os.totalmem();
    return {
      cpuPercent: 0,
      memoryPercent: Math.min(100, (mem.rss / total) * 100),
      rssMb: mem.rss / 1024 / 1024,
      loadAvg1m: os.loadavg()[0] ?? 0,
      activeTasks: 0,
      queuedTasks: 0,
    };
  }

  /** Stops heartbeats and closes every agent connection (cloud shutdown). */
  async close(reason = 'cloud shutting down'): Promise<void> {
    this.closed = true;
    for (const state of this.agents.values()) {
      this.stopHeartbeat(state);
      state.breaker.dispose();
      const session = state.session;
      if (session) {
        state.session = null;
        const msg = createMessage('SYSTEM_SHUTDOWN', { reason: reason.slice(0, 500) }, this.opts.clock.now());
        if (session.socket.readyState === WebSocket.OPEN) session.socket.send(serialize(msg));
        session.socket.close(CLOSE_SHUTDOWN, reason);
        await this.opts.repos.agents
          .upsert({ id: state.agentId, status: 'offline', lastSeenAt: this.opts.clock.now() })
          .catch((err: unknown) => this.opts.logger.warn({ err }, 'could not record agent offline'));
      }
    }
  }

  private stateOf(agentId: string): AgentState {
    let state = this.agents.get(agentId);
    if (!state) {
      const created: AgentState = {
        agentId,
        session: null,
        breaker: new CircuitBreaker(this.opts.clock, this.circuitOptions, (from, to) => {
          this.opts.events.emit('circuit.changed', { agentId, from, to });
          this.refreshHealth(created);
        }),
        overloaded: false,
        overload: null,
        metrics: null,
        lastRttMs: null,
        lastSeenAt: null,
        connectedAt: null,
        hostname: null,
        version: null,
        maxConcurrentTasks: null,
        sandbox: null,
        missed: 0,
        awaitingAnswer: false,
        pingSeq: 0,
        heartbeat: null,
        offlineSince: null,
        absences: [],
        announcedReturnAt: null,
        healthy: false,
        awaitingAck: new Map(),
      };
      state = created;
      this.agents.set(agentId, state);
    }
    return state;
  }

  private startHeartbeat(state: AgentState): void {
    this.stopHeartbeat(state);
    state.heartbeat = this.opts.clock.setInterval(() => this.beat(state), this.opts.heartbeatIntervalMs);
  }

  private stopHeartbeat(state: AgentState): void {
    if (state.heartbeat !== null) this.opts.clock.clearInterval(state.heartbeat);
    state.heartbeat = null;
  }

  /** One heartbeat tick: count the previous interval as missed if nothing came back, then ping. */
  private beat(state: AgentState): void {
    if (!state.session) return;
    const now = this.opts.clock.now();
    if (state.awaitingAnswer) {
      state.missed += 1;
      state.breaker.record('failure');
      if (state.missed >= this.missedLimit) {
        const socket = state.session.socket;
        void this.markOffline(state, `no heartbeat for ${state.missed} intervals`).finally(() =>
          socket.terminate(),
        );
        return;
      }
    }
    state.pingSeq += 1;
    state.awaitingAnswer = true;
    void this.sendToAgent(
      state.agentId,
      createMessage('HEARTBEAT_PING', { seq: state.pingSeq, sentAt: now }, now),
    );
  }

  private async markOffline(state: AgentState, reason: string): Promise<void> {
    if (!state.session) return;
    const now = this.opts.clock.now();
    state.session = null;
    state.offlineSince = now;
    state.overloaded = false;
    state.overload = null;
    this.stopHeartbeat(state);
    if (!this.closed) state.breaker.record('trip');
    this.refreshHealth(state);
    await this.opts.repos.agents
      .upsert({ id: state.agentId, status: 'offline', lastSeenAt: state.lastSeenAt ?? now })
      .catch((err: unknown) => this.opts.logger.warn({ err, agentId: state.agentId }, 'agent upsert failed'));
    const reconnectEtaMs = this.reconnectEtaMs(state.agentId);
    this.opts.logger.info({ agentId: state.agentId, reason, reconnectEtaMs }, 'agent offline');
    this.opts.events.emit('agent.offline', { agentId: state.agentId, reason, reconnectEtaMs });
    for (const l of this.offlineListeners) l(state.agentId);
  }

  private computeHealthy(s: AgentState): boolean {
    return (
      !!s.session &&
      s.session.socket.readyState === WebSocket.OPEN &&
      s.breaker.state === 'closed' &&
      !s.overloaded
    );
  }

  private refreshHealth(state: AgentState): void {
    const healthy = this.computeHealthy(state);
    const became = healthy && !state.healthy;
    const changed = healthy !== state.healthy;
    state.healthy = healthy;
    if (changed) this.opts.events.emit('agent.health', { agentId: state.agentId, healthy });
    if (became) this.announceAvailable(state);
  }

  private announceAvailable(state: AgentState): void {
    if (!this.closed) for (const l of this.availableListeners) l(state.agentId);
  }
}
