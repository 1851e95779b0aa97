import type { AddressInfo } from 'node:net';
import { backgroundClock, type Clock } from '@bematic/protocol';
import type { LogEvent } from 'kysely';
import { type Logger, pino } from 'pino';
import { ApprovalService } from '../approvals/approval-service.js';
import { AuditTrail } from '../audit/audit-trail.js';
import { BotRegistry } from '../bots/bot-registry.js';
import { createModelStrategy } from '../bots/model-routing.js';
import { Cache } from '../cache/cache.js';
import { CacheInvalidation } from '../cache/invalidation.js';
import type { ChatSurface } from '../chat/chat-surface.js';
import type { InboundHandler } from '../chat/inbound.js';
import { PostgresAgentRelay } from '../cluster/agent-relay.js';
import { CacheBus } from '../cluster/cache-bus.js';
import { type Cluster, startCluster } from '../cluster/cluster.js';
import { defaultInstanceId } from '../cluster/instance.js';
import { whenLeader } from '../cluster/leader.js';
import { deadInstanceSweep, trackPresence } from '../cluster/presence.js';
import { CommandService } from '../commands/command-service.js';
import { createCommandContext } from '../commands/context.js';
import { createInboundPipeline } from '../commands/inbound-pipeline.js';
import { type CloudConfig, slackMode } from '../config.js';
import { CONSOLE_CHANNEL_PREFIX, ConsoleChatSurface } from '../console/console-surface.js';
import { consoleTsSalt, shareConsole } from '../console/console-sync.js';
import { createDatabase, type Database } from '../db/database.js';
import { migrateToLatest } from '../db/migrations/index.js';
import { createRepositories } from '../db/repositories/index.js';
import type { Repositories, Task } from '../db/repositories/types.js';
import { createGateway, type Gateway, type GatewayConfig } from '../gateway/index.js';
import { ConsoleSessions } from '../http/access/console-session.js';
import { ClusterFeed } from '../http/cluster-feed.js';
import { databaseProbe } from '../http/health.js';
import { createHttpServer, type HttpServerHandle } from '../http/http-server.js';
import type { RateLimitStore } from '../limits/rate-limiter.js';
import { secretSafeLogOptions } from '../logging/secret-safe.js';
import { MetricsCollector } from '../metrics/metrics-collector.js';
import { NotificationService, STARTED_POST_GRACE_MS } from '../notifications/notification-service.js';
import { StartedPosts } from '../notifications/started-posts.js';
import { RetentionService } from '../retention/retention-service.js';
import { createSlackApp, type SlackApp } from '../slack/slack-app.js';
import { SLACK_CHANNEL_INTERVAL_MS } from '../slack/slack-chat-surface.js';
import { TaskEvents } from '../tasks/task-events.js';
import { TranscriptRecorder } from '../transcript/transcript-recorder.js';
import { WorkspaceRequests } from '../workspaces/workspace-requests.js';

export interface StartCloudOptions {
  config: CloudConfig;
  logger?: Logger;
  /** Gateway tuning beyond the configuration contract (tests shorten timers here). */
  gateway?: Partial<GatewayConfig>;
  /** Progress-message throttle override (default from BEMATIC_PROGRESS_INTERVAL_MS). */
  progressIntervalMs?: number;
  /**
   * Slack's limits as the update scheduler applies them (default: BEMATIC_SLACK_UPDATES_PER_MINUTE and 1 s per
   * channel); the test system lifts them, since its emulator does not enforce them unless asked.
   */
  slackUpdateBudget?: { perMinute: number; channelIntervalMs: number };
  /** Slack Web API retry tuning (tests shorten back-off). */
  slackRetry?: { retries: number; minTimeout: number; maxTimeout: number; factor?: number };
  /** Clock of the approval timeout (tests use a ManualClock). */
  approvalClock?: Clock;
  /** Sees every query the cloud runs, after the metrics do (the benchmark replays them on the bare driver). */
  onQuery?: (event: LogEvent) => void;
}

export interface Cloud {
  /** http://host:port of the dashboard and API. */
  readonly url: string;
  /** A fresh one-time sign-in link for the console (each call issues a new one). */
  loginUrl(): Promise<string>;
  /** ws://host:port, what agents put in BEMATIC_CLOUD_URL. */
  readonly agentUrl: string;
  readonly config: CloudConfig;
  readonly database: Database;
  readonly repos: Repositories;
  readonly events: TaskEvents;
  readonly gateway: Gateway;
  readonly http: HttpServerHandle;
  readonly metrics: MetricsCollector;
  /** The dashboard reads' cache (the benchmark flushes it to measure the queries beneath). */
  readonly cache: Cache;
  readonly retention: RetentionService;
  readonly commands: CommandService;
  readonly notifications: NotificationService;
  readonly inbound: InboundHandler;
  readonly console: ConsoleChatSurface;
  readonly slack: SlackApp | null;
  readonly logger: Logger;
  /** This instance's id, its leader election, and the service's instances. */
  readonly cluster: Cluster;
  close(): Promise<void>;
}

/**
 * The composition root of the control plane: database, event bus, gateway,
 * chat surfaces, commands, notifications and the HTTP server, wired together
 * and listening. Everything here is construction; behaviour lives in the parts.
 */
export async function startCloud(options: StartCloudOptions): Promise<Cloud> {
  const { config } = options;
  const instanceId = config.BEMATIC_INSTANCE_ID ?? defaultInstanceId();
  const logger = (
    options.logger ?? pino({ level: config.BEMATIC_LOG_LEVEL, ...secretSafeLogOptions() })
  ).child({ instance: instanceId });

  const metrics = new MetricsCollector();
  // First, so a second process on one SQLite file stops before it touches the file.
  const cluster = await startCluster({
    databaseUrl: config.DATABASE_URL,
    instanceId,
    leaseMs: config.BEMATIC_LEADER_LEASE_MS,
    logger,
    registry: metrics.registry,
  });
  const database = await createDatabase(config.DATABASE_URL, {
    logger,
    onQuery: options.onQuery
      ? (event) => {
          metrics.kyselyLogHook(event);
          options.onQuery?.(event);
        }
      : metrics.kyselyLogHook,
  }).catch(async (err: unknown) => {
    await cluster.close();
    throw err;
  });
  const { applied } = await migrateToLatest(database);
  if (applied.length > 0) logger.info({ applied }, 'database migrated');
  const stored = createRepositories(database.db);
  // On PostgreSQL every instance counts against the same allowances.
  const rateLimitStore: RateLimitStore = database.pool
    ? { kind: 'postgres', pool: database.pool }
    : { kind: 'memory' };

  const events = new TaskEvents((event, err) => logger.error({ err, event }, 'task event listener failed'));
  const cache = new Cache({
    name: 'cloud',
    ttlMs: config.BEMATIC_CACHE_TTL_MS,
    onLookup: (c, hit) => metrics.recordCacheLookup(c, hit),
  });
  // Several instances on PostgreSQL: what one drops from its cache, the others drop too.
  const cacheBus =
    database.dialect === 'postgres'
      ? new CacheBus({
          connectionString: config.DATABASE_URL,
          instanceId,
          clock: backgroundClock,
          logger: logger.child({ component: 'cache-bus' }),
        })
      : null;
  const invalidation = new CacheInvalidation(
    cache,
    cacheBus ? (target) => cacheBus.publish(target) : undefined,
  );
  // The live dashboard stream shows the other instances' work too, on the same session.
  const clusterFeed = cacheBus
    ? new ClusterFeed({
        bus: cacheBus,
        tasks: stored.tasks,
        logger: logger.child({ component: 'cluster-feed' }),
      })
    : null;
  cacheBus?.on('received', (channel) => metrics.busMessages.inc({ channel }));
  cacheBus?.on('lost', () => metrics.busSessionsLost.inc());
  await cacheBus?.start({ drop: (t) => invalidation.dropRemote(t), dropAll: () => invalidation.dropAll() });
  // Every project write in this process drops the cached project list.
  const repos: Repositories = { ...stored, projects: invalidation.projects(stored.projects) };
  const audit = new AuditTrail(repos.audit, { logger });
  const detach = [
    metrics.attachToEvents(events),
    invalidation.attachToEvents(events),
    // The gateway audits terminal states and authentication itself; these complete the lifecycle trail.
    audit.attachToEvents(events, [
      'task.submitted',
      'task.queued',
      'task.started',
      'agent.offline',
      'circuit.changed',
    ]),
  ];
  metrics.trackOfflineQueueDepth(() => repos.offlineQueue.countByAgent());
  detach.push(
    trackPresence({
      events,
      agents: repos.agents,
      instanceId,
      clock: backgroundClock,
      logger,
      // Bound late: agents connect only once the gateway exists.
      health: (agentId) => gateway?.manager.presenceOf(agentId) ?? null,
    }),
  );
  detach.push(
    whenLeader(
      cluster.gate,
      deadInstanceSweep({
        agents: repos.agents,
        liveInstances: async () => (await cluster.status()).instances,
        intervalMs: config.BEMATIC_LEADER_LEASE_MS,
        clock: backgroundClock,
        logger,
        onReleased: (agentIds) => {
          invalidation.agentChanged();
          gateway?.agentsReleased(agentIds);
        },
      }),
    ),
  );

  const consoleSurface = new ConsoleChatSurface({
    store: repos.consoleMessages,
    logger,
    ...(cacheBus && { tsSalt: consoleTsSalt(instanceId) }),
  });
  await consoleSurface.restore();
  // Several instances: what one console shows, the others show too.
  if (cacheBus)
    detach.push(
      shareConsole({
        surface: consoleSurface,
        bus: cacheBus,
        logger: logger.child({ component: 'console-sync' }),
      }),
    );
  const transcript = new TranscriptRecorder(repos.taskSteps, logger);
  detach.push(transcript.attach(events));
  if (clusterFeed) detach.push(clusterFeed.attach(events, transcript));
  const sessions = new ConsoleSessions({
    store: repos.consoleCredentials,
    ...(config.BEMATIC_CONSOLE_TOKEN ? { token: config.BEMATIC_CONSOLE_TOKEN } : {}),
  });
  let slack: SlackApp | null = null;
  const surfaceFor = (task: Pick<Task, 'channelId'>): ChatSurface =>
    task.channelId.startsWith(CONSOLE_CHANNEL_PREFIX) || !slack ? consoleSurface : slack.surface;

  // Bound once the gateway exists (it needs the HTTP server, which needs the retention-backed commands).
  let workspaces: WorkspaceRequests | null = null;
  const retention = new RetentionService({
    repos,
    audit,
    invalidation,
    metrics,
    logger,
    policy: { retentionDays: config.BEMATIC_RETENTION_DAYS },
    onArchived: async (task) => {
      if (workspaces) await workspaces.cleanUpAfterArchival(task);
    },
  });

  // The HTTP server needs the inbound handler and the gateway needs the server: break the cycle with a late binding.
  let inbound: InboundHandler | null = null;
  const lateInbound: InboundHandler = {
    handle: (req) => (inbound ? inbound.handle(req) : Promise.resolve()),
  };
  let gateway: Gateway | null = null;
  const http = createHttpServer({
    logger,
    metrics,
    audit,
    events,
    cache,
    repos,
    console: consoleSurface,
    inbound: lateInbound,
    sessions,
    transcript,
    ...(clusterFeed && { clusterFeed }),
    surfaceFor,
    ...(config.BEMATIC_PUBLIC_URL ? { publicUrl: config.BEMATIC_PUBLIC_URL } : {}),
    ...(config.BEMATIC_METRICS_TOKEN ? { metricsToken: config.BEMATIC_METRICS_TOKEN } : {}),
    directory: {
      listAgents: (q) =>
        gateway ? gateway.directory.listAgents(q) : Promise.resolve({ agents: [], next: null }),
      countAgents: () =>
        gateway ? gateway.directory.countAgents() : Promise.resolve({ online: 0, offline: 0, total: 0 }),
    },
    health: {
      database: databaseProbe(database),
      gateway: () => (gateway ? { ok: true } : { ok: false, detail: 'gateway not started' }),
      cluster: () => cluster.status(),
    },
  });

  const gw = createGateway({
    server: http.server,
    repos,
    events,
    logger,
    config: {
      heartbeatIntervalMs: config.BEMATIC_HEARTBEAT_MS,
      authTimeoutMs: config.BEMATIC_AUTH_TIMEOUT_MS,
      offlineTtlMs: config.BEMATIC_OFFLINE_TTL_MS,
      reconnectGraceMs: config.BEMATIC_RECONNECT_GRACE_MS,
      ...options.gateway,
    },
    observer: metrics,
    leader: cluster.gate,
    instanceId,
    rateLimitStore,
    // Reaching agents held by other instances: one more channel on the bus's LISTEN session.
    ...(cacheBus && {
      relay: new PostgresAgentRelay({ bus: cacheBus, logger: logger.child({ component: 'agent-relay' }) }),
    }),
  });
  gateway = gw;

  const approvals = new ApprovalService({
    repos,
    sendToAgent: (agentId, message) => gw.routes.send(agentId, message),
    showProgress: async (task, message) => {
      await gw.lifecycle.progress(task, {
        taskId: task.id,
        attempt: task.attempt,
        kind: 'status',
        message: message.slice(0, 2000),
      });
    },
    surfaceFor,
    events,
    clock: options.approvalClock ?? backgroundClock,
    timeoutMs: config.BEMATIC_APPROVAL_TIMEOUT_MS,
    logger,
  });
  gw.useApprovals(approvals);

  const bots = new BotRegistry();
  workspaces = new WorkspaceRequests({
    repos,
    send: (agentId, message) => gw.routes.send(agentId, message),
    events,
    surfaceFor,
    logger,
  });
  detach.push(workspaces.start());
  const startedPosts = new StartedPosts();
  const commandContext = createCommandContext({
    repos,
    startedPosts,
    workspaces,
    dispatcher: gateway.dispatcher,
    agents: gateway.directory,
    retention: {
      archive: async (taskId, reason, actor) => ({
        id: (await retention.archive(taskId, reason, actor)).archiveId,
      }),
      restore: async (archiveId, actor) => ({ id: await retention.restore(archiveId, actor) }),
    },
    bots,
    modelStrategy: createModelStrategy({
      premium: config.BEMATIC_MODEL_PREMIUM,
      standard: config.BEMATIC_MODEL_STANDARD,
      fast: config.BEMATIC_MODEL_FAST,
    }),
    surfaceFor,
    tasks: gateway.lifecycle,
    logger,
    metrics,
    approvals,
    cluster: {
      instanceId,
      status: () => cluster.status(),
      holders: async () =>
        Object.fromEntries(
          (await repos.agents.list()).flatMap((a) => (a.instanceId ? [[a.id, a.instanceId]] : [])),
        ),
    },
  });
  const commands = new CommandService(commandContext);
  detach.push(commands.attach(events));
  const adminUsers = config.BEMATIC_ADMIN_USERS.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  inbound = createInboundPipeline({
    commands,
    repos,
    logger,
    auth: { defaultRole: config.BEMATIC_DEFAULT_ROLE, adminUserIds: adminUsers },
    rateLimit: { limit: config.BEMATIC_RATE_LIMIT, windowMs: config.BEMATIC_RATE_WINDOW_MS },
    rateLimitStore,
    observe: (stage, ms) => metrics.observeMiddlewareStage(stage, ms),
    onRateLimited: (scope) => metrics.recordRateLimitHit(scope),
  });

  const mode = slackMode(config);
  if (mode !== 'off') {
    slack = await createSlackApp({
      botToken: config.SLACK_BOT_TOKEN!,
      appToken: config.SLACK_APP_TOKEN,
      signingSecret: config.SLACK_SIGNING_SECRET,
      apiUrl: config.SLACK_API_URL,
      handler: inbound,
      deliveries: repos.slackDeliveries,
      logger,
      observe: (eventType, ms) => metrics.observeSlackEvent(eventType, ms),
      ...(options.slackRetry && { retryConfig: options.slackRetry }),
    });
    if (slack.requestListener) http.mount('/slack', slack.requestListener);
  }

  // After Slack exists, so questions a previous run left open are closed where they were asked.
  await approvals.start();

  const notifications = new NotificationService({
    events,
    startedPosts,
    // Another instance may have launched the task; its "Task started" post lands in the database.
    ...(database.dialect === 'postgres' && { startedPostGraceMs: STARTED_POST_GRACE_MS }),
    tasks: repos.tasks,
    bots,
    surfaceFor,
    logger,
    owner: commands.taskMessages,
    updateIntervalMs: options.progressIntervalMs ?? config.BEMATIC_PROGRESS_INTERVAL_MS,
    updateBudget: {
      slack: options.slackUpdateBudget ?? {
        perMinute: config.BEMATIC_SLACK_UPDATES_PER_MINUTE,
        channelIntervalMs: SLACK_CHANNEL_INTERVAL_MS,
      },
    },
    // Slack needs the public address; the console can use a path on the page it is already on.
    taskUrl: (task) => {
      const path = `/tasks/${encodeURIComponent(task.id)}`;
      if (config.BEMATIC_PUBLIC_URL) return `${config.BEMATIC_PUBLIC_URL.replace(/\/$/, '')}${path}`;
      return task.channelId.startsWith(CONSOLE_CHANNEL_PREFIX) ? path : undefined;
    },
    ...(config.BEMATIC_ADMIN_CHANNEL && {
      adminChannel: {
        surface: surfaceFor({ channelId: config.BEMATIC_ADMIN_CHANNEL }),
        channelId: config.BEMATIC_ADMIN_CHANNEL,
      },
    }),
  }).start();

  await new Promise<void>((resolve, reject) => {
    http.server.once('error', reject);
    http.server.listen(config.PORT, config.HOST, () => {
      http.server.off('error', reject);
      resolve();
    });
  });
  const { port } = http.server.address() as AddressInfo;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  if (slack) await slack.start();
  const stopRetention = whenLeader(cluster.gate, {
    start: () => retention.start(),
    stop: () => retention.stop(),
  });
  await gateway.ready;
  await http.reads.warm();

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      for (const off of detach) off();
      approvals.stop();
      notifications.stop();
      stopRetention();
      await retention.stop();
      if (slack) await slack.stop().catch((err: unknown) => logger.warn({ err }, 'slack stop failed'));
      await gateway?.close();
      await http.close();
      await transcript.flush();
      await consoleSurface.flush();
      await cacheBus?.close();
      await database.close();
      await cluster.close();
    })();
    return closing;
  };

  logger.info({ port, slack: mode, leader: cluster.gate.isLeader }, 'cloud started');
  const url = `http://${host}:${port}`;
  const publicBase = (config.BEMATIC_PUBLIC_URL ?? url).replace(/\/$/, '');
  return {
    url,
    loginUrl: async () => `${publicBase}/login?token=${await sessions.issueLoginToken()}`,
    agentUrl: `ws://${host}:${port}`,
    config,
    database,
    cache,
    repos,
    events,
    gateway,
    http,
    metrics,
    retention,
    commands,
    notifications,
    inbound,
    console: consoleSurface,
    slack,
    logger,
    cluster,
    close,
  };
}
