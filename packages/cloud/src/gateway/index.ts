import type { Server } from 'node:http';
import {
  type AuthRequest,
  backgroundClock,
  type Clock,
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  MAX_FRAME_BYTES,
} from '@bematic/protocol';
import { type Logger, pino } from 'pino';
import { ApiKeyService } from '../auth/api-keys.js';
import { type AgentRelay, LocalAgentRelay } from '../cluster/agent-relay.js';
import { ALWAYS_LEADER, type LeaderGate, whenLeader } from '../cluster/leader.js';
import type { Repositories } from '../db/repositories/types.js';
import type { RateLimitStore } from '../limits/rate-limiter.js';
import type { TaskEvents } from '../tasks/task-events.js';
import { TaskLifecycle } from '../tasks/task-lifecycle.js';
import { AgentGateway } from './agent-gateway.js';
import { AgentManager } from './agent-manager.js';
import { AgentRoutes } from './agent-routes.js';
import type { CircuitBreakerOptions } from './circuit-breaker.js';
import { MessageRouter, type PermissionRequestHandler } from './message-router.js';
import { type GatewayObserver, SubmitRoundTrips } from './observer.js';
import { OfflineQueue } from './offline-queue.js';
import { Reconciler } from './reconciler.js';
import { GatewayTaskDispatcher } from './task-dispatcher.js';
import type { AgentDirectory } from './types.js';

export interface GatewayConfig {
  heartbeatIntervalMs: number;
  authTimeoutMs: number;
  /** How long a task waits in the offline queue before it fails QUEUE_EXPIRED. */
  offlineTtlMs: number;
  /** How long tasks held by an absent agent wait for it before they fail AGENT_LOST. */
  reconnectGraceMs: number;
  maxFrameBytes: number;
  offlineSweepIntervalMs: number;
  drainBatchSize: number;
  authFailuresPerMinute: number;
  circuit: Partial<CircuitBreakerOptions>;
  /** Dispatch pending tasks and start reconnect-grace timers as soon as the gateway is created. */
  reconcileOnStartup: boolean;
  /** How often outbox rows never sent are looked for, for agents connected here (wake-ups lost). */
  outboxSafetySweepMs: number;
}

export const DEFAULT_GATEWAY_CONFIG: GatewayConfig = {
  heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
  authTimeoutMs: DEFAULT_AUTH_TIMEOUT_MS,
  offlineTtlMs: 24 * 60 * 60 * 1000,
  reconnectGraceMs: 10 * 60 * 1000,
  maxFrameBytes: MAX_FRAME_BYTES,
  offlineSweepIntervalMs: 60_000,
  drainBatchSize: 50,
  authFailuresPerMinute: 5,
  circuit: {},
  reconcileOnStartup: true,
  outboxSafetySweepMs: 5_000,
};

export interface CreateGatewayOptions {
  server: Server;
  repos: Repositories;
  events: TaskEvents;
  logger?: Logger;
  config?: Partial<GatewayConfig>;
  clock?: Clock;
  /** Connection-establishment and message round-trip timings, for metrics. */
  observer?: GatewayObserver;
  /** Queue expiry and start-up reconciliation run only while this says so (default: always). */
  leader?: LeaderGate;
  /** This instance's id, as written in agents.instance_id (presence). */
  instanceId?: string;
  /** Where failed agent authentications are counted (default: memory). */
  rateLimitStore?: RateLimitStore;
  /** How this instance reaches agents held by other instances (default: none, one process). */
  relay?: AgentRelay;
}

export interface Gateway {
  dispatcher: GatewayTaskDispatcher;
  /** Frames to agents wherever their socket is (this instance or another). */
  routes: AgentRoutes;
  directory: AgentDirectory;
  manager: AgentManager;
  apiKeys: ApiKeyService;
  lifecycle: TaskLifecycle;
  outbox: OfflineQueue;
  /** Hands agents' PERMISSION_REQUESTs to `handler` (until then they are answered `undeliverable`). */
  useApprovals(handler: PermissionRequestHandler): void;
  reconcileOnStartup(): Promise<void>;
  /** The leader found these agents' instance gone: unless they are back, their tasks get the reconnect grace. */
  agentsReleased(agentIds: string[]): void;
  /** Settles when the relay listens and startup reconciliation (if enabled) has run. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** Wires the agent gateway onto an existing HTTP server. */
export function createGateway(options: CreateGatewayOptions): Gateway {
  const config: GatewayConfig = { ...DEFAULT_GATEWAY_CONFIG, ...options.config };
  const clock = options.clock ?? backgroundClock;
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'gateway' });
  const { repos, events } = options;
  const now = () => clock.now();
  const roundTrips = new SubmitRoundTrips(clock, options.observer);

  const apiKeys = new ApiKeyService({ apiKeys: repos.apiKeys, audit: repos.audit, now });
  const lifecycle = new TaskLifecycle({ repos, events, logger, now });
  const manager = new AgentManager({
    repos,
    events,
    logger,
    clock,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    circuit: config.circuit,
  });
  const outbox = new OfflineQueue({
    repos,
    manager,
    lifecycle,
    logger,
    clock,
    ttlMs: config.offlineTtlMs,
    sweepIntervalMs: config.offlineSweepIntervalMs,
    drainBatchSize: config.drainBatchSize,
    roundTrips,
  });
  const relay = options.relay ?? new LocalAgentRelay();
  const routes = new AgentRoutes({
    manager,
    agents: repos.agents,
    relay,
    ...(options.instanceId !== undefined && { instanceId: options.instanceId }),
  });
  const dispatcher = new GatewayTaskDispatcher({ repos, manager, outbox, lifecycle, logger, clock, routes });
  const reconciler = new Reconciler({
    repos,
    manager,
    dispatcher,
    outbox,
    lifecycle,
    logger,
    clock,
    reconnectGraceMs: config.reconnectGraceMs,
    heldElsewhere: (agentId) => routes.heldElsewhere(agentId),
  });
  const router = new MessageRouter({
    repos,
    manager,
    dispatcher,
    lifecycle,
    logger,
    clock,
    roundTrips,
    events,
    ...(options.observer && { observer: options.observer }),
  });

  manager.onAvailable((agentId) => {
    dispatcher
      .agentAvailable(agentId)
      .catch((err: unknown) => logger.error({ err, agentId }, 'sending waiting tasks failed'));
  });
  manager.onOffline((agentId) => {
    reconciler.agentWentOffline(agentId);
    outbox
      .requeueUnacknowledged(agentId, `agent ${agentId} went offline`)
      .catch((err: unknown) => logger.error({ err, agentId }, 'requeue after disconnect failed'));
  });

  const sweepUnsent = () =>
    outbox
      .sweepUnsent(manager.connectedAgentIds(), config.outboxSafetySweepMs)
      .catch((err: unknown) => logger.warn({ err }, 'outbox safety sweep failed'));
  const relayStarted = relay
    .start({
      frame: (agentId, message) => {
        if (manager.isConnected(agentId)) void manager.sendToAgent(agentId, message);
      },
      submit: (agentId, taskId, attempt) => {
        dispatcher
          .handedOver(agentId, taskId, attempt)
          .catch((err: unknown) => logger.error({ err, agentId, taskId }, 'handed-over task not sent'));
      },
      resumed: () => void sweepUnsent(),
    })
    .catch((err: unknown) => logger.error({ err }, 'agent relay did not start'));
  const safetySweep = clock.setInterval(() => void sweepUnsent(), config.outboxSafetySweepMs);

  const gateway = new AgentGateway({
    server: options.server,
    apiKeys,
    audit: repos.audit,
    manager,
    router,
    logger,
    clock,
    authTimeoutMs: config.authTimeoutMs,
    maxFrameBytes: config.maxFrameBytes,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    reconnectGraceMs: config.reconnectGraceMs,
    authFailuresPerMinute: config.authFailuresPerMinute,
    ...(options.rateLimitStore && { rateLimitStore: options.rateLimitStore }),
    onAuthenticated: async (agentId: string, auth: AuthRequest) => ({
      cancelTaskIds: await reconciler.unwantedTaskIds(agentId, auth),
    }),
    afterAuthResponse: (agentId: string, auth: AuthRequest) => reconciler.afterAuth(agentId, auth),
    ...(options.observer && { observer: options.observer }),
  });

  const leader = options.leader ?? ALWAYS_LEADER;
  const stopSweeping = whenLeader(leader, { start: () => outbox.start(), stop: () => outbox.stop() });
  const reconcileOnStartup = () => reconciler.reconcileOnStartup();
  const reconcile = () =>
    reconcileOnStartup().catch((err: unknown) => logger.error({ err }, 'startup reconciliation failed'));
  const reconciled = config.reconcileOnStartup && leader.isLeader ? reconcile() : Promise.resolve();
  const ready = Promise.all([relayStarted, reconciled]).then(() => undefined);
  // A new leader takes over what the old one left: pending tasks and agents nobody holds.
  const stopReconciling = config.reconcileOnStartup
    ? leader.onChange((isLeader) => {
        if (isLeader) void reconcile();
      })
    : () => undefined;

  let closing: Promise<void> | null = null;
  return {
    dispatcher,
    routes,
    directory: manager,
    manager,
    apiKeys,
    lifecycle,
    outbox,
    useApprovals: (handler) => router.useApprovals(handler),
    reconcileOnStartup,
    agentsReleased: (agentIds) => {
      for (const agentId of agentIds) if (!manager.isConnected(agentId)) reconciler.agentWentOffline(agentId);
    },
    ready,
    close: () => {
      closing ??= (async () => {
        stopReconciling();
        stopSweeping();
        clock.clearInterval(safetySweep);
        await relayStarted;
        reconciler.close();
        await ready;
        await manager.close();
        await gateway.close();
        await outbox.idle();
        await relay.close();
      })();
      return closing;
    },
  };
}

export {
  type ApiKeyInfo,
  type ApiKeyRejection,
  ApiKeyService,
  type ApiKeyVerification,
  apiKeyPrefix,
  generateApiKey,
  hashApiKey,
} from '../auth/api-keys.js';
export { type ApplyOutcome, type CloudFailure, TaskLifecycle } from '../tasks/task-lifecycle.js';
export { AgentGateway, CLOSE_AUTH_FAILED, CLOSE_AUTH_TIMEOUT, CLOSE_RATE_LIMITED } from './agent-gateway.js';
export { AgentManager, type AgentSession } from './agent-manager.js';
export { CIRCUIT_TRANSITIONS, CircuitBreaker, type CircuitEvent } from './circuit-breaker.js';
export { MessageRouter } from './message-router.js';
export { type GatewayObserver, SubmitRoundTrips } from './observer.js';
export { OfflineQueue } from './offline-queue.js';
export { Reconciler } from './reconciler.js';
export { GatewayTaskDispatcher } from './task-dispatcher.js';
