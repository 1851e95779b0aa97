import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import type { TaskMetrics } from '@bematic/protocol';
import type { LogEvent } from 'kysely';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Task } from '../db/repositories/types.js';
import type { TaskEvents } from '../tasks/task-events.js';

export interface MetricsCollectorOptions {
  /** Metric name prefix (default `bematic_`). */
  prefix?: string;
  /** Node process metrics (CPU, memory, event loop, GC). Default true. */
  defaultMetrics?: boolean;
  /**
   * Sample the event loop's delay (a stall shows as its length). Default true: a 10 ms sampler of its own;
   * or the enabled sampler to read (a test that watches the samples).
   */
  eventLoopDelay?: boolean | IntervalHistogram;
  now?: () => number;
}

export type TokenKind = 'input' | 'output' | 'cache_read' | 'cache_creation';

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const TASK_BUCKETS = [0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];
const WAIT_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600];
/** submitted timestamps kept for queue-wait measurement; bounded so lost tasks cannot leak memory. */
const MAX_PENDING_WAITS = 10_000;

/**
 * The seed's metrics collection points, on prom-client with a registry of its
 * own (so several collectors can coexist, e.g. one per test). Durations are
 * passed in milliseconds and exported in seconds, as Prometheus expects.
 */
export class MetricsCollector {
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly submittedAt = new Map<string, number>();
  private readonly cacheCounts = new Map<string, { hits: number; misses: number }>();
  private offlineQueueSource: (() => Promise<Record<string, number>>) | null = null;

  readonly slackEventDuration: Histogram<'event'>;
  readonly middlewareStageDuration: Histogram<'stage'>;
  readonly rateLimitHits: Counter<'scope'>;
  readonly botResolutionDuration: Histogram;
  readonly modelRoutingDecisions: Counter<'bot' | 'tier'>;
  readonly queueWait: Histogram;
  readonly executionDuration: Histogram<'bot' | 'status'>;
  readonly tokens: Counter<'kind'>;
  readonly costUsd: Counter<'bot'>;
  readonly taskOutcomes: Counter<'status' | 'bot'>;
  readonly taskErrors: Counter<'code'>;
  readonly staleTaskMessages: Counter<'type' | 'reason'>;
  readonly wsConnectDuration: Histogram;
  readonly messageRtt: Histogram<'type'>;
  readonly heartbeatRtt: Histogram;
  readonly circuitChanges: Counter<'from' | 'to'>;
  readonly agentCpu: Gauge<'agent'>;
  readonly agentMemory: Gauge<'agent'>;
  readonly agentActiveTasks: Gauge<'agent'>;
  readonly dbQueryDuration: Histogram<'operation' | 'outcome'>;
  readonly cacheLookups: Counter<'cache' | 'result'>;
  readonly cacheHitRatio: Gauge<'cache'>;
  readonly archivals: Counter<'trigger'>;
  readonly restores: Counter;
  readonly busMessages: Counter<'channel'>;
  readonly busSessionsLost: Counter;
  readonly offlineQueueDepth: Gauge<'agent'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly eventLoopDelay: Gauge<'stat'>;

  constructor(opts: MetricsCollectorOptions = {}) {
    const p = opts.prefix ?? 'bematic_';
    const registers = [this.registry];
    this.now = opts.now ?? Date.now;
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: p });

    const histogram = <L extends string>(name: string, help: string, labelNames: L[], buckets: number[]) =>
      new Histogram<L>({ name: p + name, help, labelNames, buckets, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name: p + name, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Gauge<L>({ name: p + name, help, labelNames, registers });

    this.slackEventDuration = histogram(
      'slack_event_processing_seconds',
      'Time from a chat event arriving to its handling finishing',
      ['event'],
      LATENCY_BUCKETS,
    );
    this.middlewareStageDuration = histogram(
      'middleware_stage_seconds',
      'Latency of each middleware stage',
      ['stage'],
      LATENCY_BUCKETS,
    );
    this.rateLimitHits = counter('rate_limit_hits_total', 'Requests refused by the rate limiter', ['scope']);
    this.botResolutionDuration = histogram(
      'bot_resolution_seconds',
      'Time to resolve the bot persona and command',
      [],
      LATENCY_BUCKETS,
    );
    this.modelRoutingDecisions = counter('model_routing_decisions_total', 'Model tier chosen per bot', [
      'bot',
      'tier',
    ]);
    this.queueWait = histogram('task_queue_wait_seconds', 'Time from submission to start', [], WAIT_BUCKETS);
    this.executionDuration = histogram(
      'task_execution_seconds',
      'Execution time reported by the agent',
      ['bot', 'status'],
      TASK_BUCKETS,
    );
    this.tokens = counter('tokens_total', 'Model tokens used by tasks', ['kind']);
    this.costUsd = counter('cost_usd_total', 'Model cost of tasks in US dollars', ['bot']);
    this.taskOutcomes = counter('task_outcomes_total', 'Tasks reaching a terminal status', ['status', 'bot']);
    this.taskErrors = counter('task_errors_total', 'Task failures by error code', ['code']);
    this.staleTaskMessages = counter(
      'stale_task_messages_total',
      'Agent messages ignored because they were from an earlier attempt or another agent',
      ['type', 'reason'],
    );
    this.wsConnectDuration = histogram(
      'ws_connection_establishment_seconds',
      'Time from WebSocket upgrade to successful agent authentication',
      [],
      LATENCY_BUCKETS,
    );
    this.messageRtt = histogram(
      'ws_message_rtt_seconds',
      'Round trip of a message to an agent and its answer',
      ['type'],
      LATENCY_BUCKETS,
    );
    this.heartbeatRtt = histogram(
      'heartbeat_rtt_seconds',
      'Heartbeat ping → pong round trip',
      [],
      LATENCY_BUCKETS,
    );
    this.circuitChanges = counter('circuit_breaker_transitions_total', 'Circuit breaker state changes', [
      'from',
      'to',
    ]);
    this.agentCpu = gauge('agent_cpu_percent', 'Agent CPU usage reported in heartbeats', ['agent']);
    this.agentMemory = gauge('agent_memory_percent', 'Agent memory usage reported in heartbeats', ['agent']);
    this.agentActiveTasks = gauge('agent_active_tasks', 'Tasks an agent is running', ['agent']);
    this.dbQueryDuration = histogram(
      'db_query_seconds',
      'Database query duration',
      ['operation', 'outcome'],
      LATENCY_BUCKETS,
    );
    this.cacheLookups = counter('cache_lookups_total', 'Cache lookups', ['cache', 'result']);
    const cacheCounts = this.cacheCounts;
    this.cacheHitRatio = new Gauge<'cache'>({
      name: `${p}cache_hit_ratio`,
      help: 'Cache hits / lookups since start',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [cache, c] of cacheCounts) {
          const total = c.hits + c.misses;
          this.set({ cache }, total === 0 ? 0 : c.hits / total);
        }
      },
    });
    this.archivals = counter('archivals_total', 'Tasks moved to the archive', ['trigger']);
    this.restores = counter('restores_total', 'Tasks restored from the archive', []);
    this.busMessages = counter(
      'cluster_bus_messages_received_total',
      'Messages from other instances applied from LISTEN/NOTIFY',
      ['channel'],
    );
    this.busSessionsLost = counter(
      'cluster_bus_sessions_lost_total',
      'Times the LISTEN session to PostgreSQL was lost (messages may have been missed; caches are flushed)',
      [],
    );
    const self = this;
    this.offlineQueueDepth = new Gauge<'agent'>({
      name: `${p}offline_queue_depth`,
      help: 'Tasks waiting in the durable offline queue',
      labelNames: ['agent'],
      registers,
      async collect() {
        if (!self.offlineQueueSource) return;
        try {
          const depths = await self.offlineQueueSource();
          this.reset();
          for (const [agent, n] of Object.entries(depths)) this.set({ agent }, n);
        } catch {
          // A scrape must not fail because the database is briefly unavailable.
        }
      },
    });
    this.httpRequests = counter('http_requests_total', 'HTTP requests served', ['method', 'route', 'status']);
    // Sampled every 10 ms; each scrape reports the window since the previous one and starts a new window,
    // so one long synchronous query shows up as `max` at the next scrape.
    const loop = eventLoopSampler(opts.eventLoopDelay ?? true);
    this.eventLoopDelay = new Gauge<'stat'>({
      name: `${p}event_loop_delay_seconds`,
      help: 'Event-loop delay since the previous scrape (stat: p50, p99, max)',
      labelNames: ['stat'],
      registers,
      collect() {
        if (!loop || loop.count === 0) return;
        this.set({ stat: 'p50' }, loop.percentile(50) / 1e9);
        this.set({ stat: 'p99' }, loop.percentile(99) / 1e9);
        this.set({ stat: 'max' }, loop.max / 1e9);
        loop.reset();
      },
    });
  }

  // ---- request ingestion ----
  observeSlackEvent(event: string, ms: number): void {
    this.slackEventDuration.observe({ event }, ms / 1000);
  }
  observeMiddlewareStage(stage: string, ms: number): void {
    this.middlewareStageDuration.observe({ stage }, ms / 1000);
  }
  recordRateLimitHit(scope = 'user'): void {
    this.rateLimitHits.inc({ scope });
  }

  // ---- task processing ----
  observeBotResolution(ms: number): void {
    this.botResolutionDuration.observe(ms / 1000);
  }
  recordModelRouting(bot: string, tier: string): void {
    this.modelRoutingDecisions.inc({ bot, tier });
  }
  recordTaskSubmitted(taskId: string, at: number = this.now()): void {
    if (this.submittedAt.size >= MAX_PENDING_WAITS) {
      const oldest = this.submittedAt.keys().next().value;
      if (oldest !== undefined) this.submittedAt.delete(oldest);
    }
    if (!this.submittedAt.has(taskId)) this.submittedAt.set(taskId, at);
  }
  recordTaskStarted(task: Pick<Task, 'id' | 'createdAt' | 'startedAt'>): void {
    const from = this.submittedAt.get(task.id) ?? task.createdAt;
    this.submittedAt.delete(task.id);
    const to = task.startedAt ?? this.now();
    this.queueWait.observe(Math.max(0, to - from) / 1000);
  }
  /** Terminal outcome of a task, with the agent's usage figures when it reported them. */
  recordTaskCompletion(
    task: Pick<Task, 'id' | 'botName'>,
    status: 'completed' | 'failed' | 'cancelled',
    metrics?: TaskMetrics,
  ): void {
    this.submittedAt.delete(task.id);
    this.taskOutcomes.inc({ status, bot: task.botName });
    if (!metrics) return;
    this.executionDuration.observe({ bot: task.botName, status }, metrics.durationMs / 1000);
    const kinds: Array<[TokenKind, number]> = [
      ['input', metrics.inputTokens],
      ['output', metrics.outputTokens],
      ['cache_read', metrics.cacheReadTokens],
      ['cache_creation', metrics.cacheCreationTokens],
    ];
    for (const [kind, n] of kinds) if (n > 0) this.tokens.inc({ kind }, n);
    if (metrics.costUsd > 0) this.costUsd.inc({ bot: task.botName }, metrics.costUsd);
  }
  recordError(code: string): void {
    this.taskErrors.inc({ code });
  }

  // ---- websocket operations ----
  observeWsConnect(ms: number): void {
    this.wsConnectDuration.observe(ms / 1000);
  }
  observeMessageRtt(type: string, ms: number): void {
    this.messageRtt.observe({ type }, ms / 1000);
  }
  observeStaleMessage(type: string, reason: 'agent' | 'attempt'): void {
    this.staleTaskMessages.inc({ type, reason });
  }
  observeHeartbeatRtt(ms: number): void {
    this.heartbeatRtt.observe(ms / 1000);
  }
  recordCircuitChange(from: string, to: string): void {
    this.circuitChanges.inc({ from, to });
  }

  // ---- resource utilisation ----
  setAgentResources(
    agent: string,
    m: { cpuPercent: number; memoryPercent: number; activeTasks?: number },
  ): void {
    this.agentCpu.set({ agent }, m.cpuPercent);
    this.agentMemory.set({ agent }, m.memoryPercent);
    if (m.activeTasks !== undefined) this.agentActiveTasks.set({ agent }, m.activeTasks);
  }
  /** Pass as (or call from) Kysely's `log` option to time every query. */
  readonly kyselyLogHook = (event: LogEvent): void => {
    const operation = /^\s*(\w+)/.exec(event.query.sql)?.[1]?.toLowerCase() ?? 'other';
    this.dbQueryDuration.observe(
      { operation, outcome: event.level === 'error' ? 'error' : 'ok' },
      event.queryDurationMillis / 1000,
    );
  };
  recordCacheLookup(cache: string, hit: boolean): void {
    this.cacheLookups.inc({ cache, result: hit ? 'hit' : 'miss' });
    const c = this.cacheCounts.get(cache) ?? { hits: 0, misses: 0 };
    if (hit) c.hits++;
    else c.misses++;
    this.cacheCounts.set(cache, c);
  }
  recordArchival(trigger: 'manual' | 'policy'): void {
    this.archivals.inc({ trigger });
  }
  recordRestore(): void {
    this.restores.inc();
  }
  /** Read the durable queue depth per agent at scrape time (e.g. OfflineQueueRepository.countByAgent). */
  trackOfflineQueueDepth(source: () => Promise<Record<string, number>>): void {
    this.offlineQueueSource = source;
  }
  recordHttpRequest(method: string, route: string, status: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
  }

  /** Record what the lifecycle bus tells: submissions, starts, outcomes, heartbeats, circuits. */
  attachToEvents(events: TaskEvents): () => void {
    const offs = [
      events.on('task.submitted', ({ task }) => this.recordTaskSubmitted(task.id)),
      events.on('task.started', ({ task }) => this.recordTaskStarted(task)),
      events.on('task.completed', ({ task, message }) =>
        this.recordTaskCompletion(task, 'completed', message.metrics),
      ),
      events.on('task.failed', ({ task, message }) => {
        this.recordTaskCompletion(task, 'failed', message.metrics);
        this.recordError(message.errorCode);
      }),
      events.on('task.cancelled', ({ task, message }) =>
        this.recordTaskCompletion(task, 'cancelled', message.metrics),
      ),
      events.on('agent.heartbeat', ({ agentId, rttMs, metrics }) => {
        this.observeHeartbeatRtt(rttMs);
        this.setAgentResources(agentId, metrics);
      }),
      events.on('agent.status', ({ agentId, status }) => this.setAgentResources(agentId, status.metrics)),
      events.on('circuit.changed', ({ from, to }) => this.recordCircuitChange(from, to)),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Prometheus text exposition for GET /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

function eventLoopSampler(option: boolean | IntervalHistogram): IntervalHistogram | null {
  if (option !== true) return option || null;
  const sampler = monitorEventLoopDelay({ resolution: 10 });
  sampler.enable();
  return sampler;
}
