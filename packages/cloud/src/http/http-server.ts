import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import fastifyCookie from '@fastify/cookie';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { type Logger, pino } from 'pino';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { Cache } from '../cache/cache.js';
import type { ChatSurface } from '../chat/chat-surface.js';
import type { InboundHandler } from '../chat/inbound.js';
import { type ConsoleChatSurface, DEFAULT_CONSOLE_CHANNEL } from '../console/console-surface.js';
import type { Repositories, Task } from '../db/repositories/types.js';
import type { AgentDirectory } from '../gateway/types.js';
import type { MetricsCollector } from '../metrics/metrics-collector.js';
import type { TaskEvents } from '../tasks/task-events.js';
import { AllowedHosts } from './access/allowed-hosts.js';
import { ConsoleSessions } from './access/console-session.js';
import { registerAccessControl } from './access/guard.js';
import type { RemoteFeed, StepFeed } from './cluster-feed.js';
import { ConsoleApi } from './console-api.js';
import { DashboardReads } from './dashboard-reads.js';
import { EventStream } from './event-stream.js';
import type { HealthProbes } from './health.js';
import { DEFAULT_MAX_BODY_BYTES, HttpError } from './http-error.js';
import { registerApiRoutes } from './routes/api-routes.js';
import { registerConsoleRoutes } from './routes/console-routes.js';
import { registerHealthRoutes } from './routes/health-routes.js';
import { registerPageRoutes } from './routes/page-routes.js';
import { registerSessionRoutes } from './routes/session-routes.js';
import { TaskActions } from './task-actions.js';

export type MountedHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpServerDeps {
  logger?: Logger;
  metrics?: MetricsCollector;
  health: HealthProbes;
  repos: Repositories;
  directory: AgentDirectory;
  console: ConsoleChatSurface;
  inbound: InboundHandler;
  cache: Cache;
  /** Live task/agent updates for GET /api/events. */
  events?: TaskEvents;
  /** Transcript writes, pushed to the page as `step` events. */
  transcript?: StepFeed;
  /** Other instances' tasks, agents and transcripts, for the live stream (several instances on PostgreSQL). */
  clusterFeed?: RemoteFeed;
  /** Bad requests are audited when given. */
  audit?: AuditTrail;
  /** Who may use the console and /api (default: sessions from one-time login links only). */
  sessions?: ConsoleSessions;
  /** BEMATIC_PUBLIC_URL: its host name is accepted besides localhost, 127.0.0.1 and [::1]. */
  publicUrl?: string;
  /** BEMATIC_METRICS_TOKEN: when set, /metrics needs `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** Directory of the built front end (index.html + assets); default the @bematic/dashboard package's. */
  assetsDir?: string;
  /** Surface a task's conversation lives on, for actions taken from its page (default the console). */
  surfaceFor?: (task: Task) => ChatSurface;
  /** Who types into the local console (default 'console-user'). */
  consoleUserId?: string;
  consoleUserName?: string;
  /** Default 'console:local'. */
  consoleChannelId?: string;
  /** Largest accepted JSON body (default 64 KiB). */
  maxBodyBytes?: number;
  sseHeartbeatMs?: number;
  now?: () => number;
}

export interface HttpServerHandle {
  /** Not listening yet: the caller attaches the WebSocket upgrade handler, then listens. */
  server: Server;
  /** Hand every request under `pathPrefix` to `handler` (e.g. Slack's HTTP receiver at /slack). */
  mount(pathPrefix: string, handler: MountedHandler): void;
  reads: DashboardReads;
  sessions: ConsoleSessions;
  /** End SSE streams and close the server. */
  close(): Promise<void>;
}

/** What every route module gets. */
export interface RouteContext {
  deps: HttpServerDeps;
  logger: Logger;
  reads: DashboardReads;
  consoleApi: ConsoleApi;
  stream: EventStream;
  sessions: ConsoleSessions;
  hosts: AllowedHosts;
  taskActions: TaskActions;
  /** Where a task's conversation can be opened, if anywhere. */
  threadLink: (task: Task) => string | null;
  user: { userId: string; userName: string; channelId: string };
}

/** Fastify's own body errors, answered with the codes clients already know. */
const FRAMEWORK_ERRORS: Record<string, { status: number; code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'INVALID_JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'INVALID_JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'INVALID_CONTENT_LENGTH' },
};

/**
 * The cloud's HTTP server: Fastify routes for the dashboard's JSON API, the
 * console, the live event stream, health and metrics, the built front end,
 * and raw mounts (Slack's receiver). The agent WebSocket attaches to the same
 * `server` through its upgrade event.
 */
export function createHttpServer(deps: HttpServerDeps): HttpServerHandle {
  const logger = deps.logger ?? pino({ level: 'silent' });
  const now = deps.now ?? Date.now;
  const user = {
    userId: deps.consoleUserId ?? 'console-user',
    userName: deps.consoleUserName ?? 'You',
    channelId: deps.consoleChannelId ?? DEFAULT_CONSOLE_CHANNEL,
  };
  const reads = new DashboardReads(deps.repos, deps.cache, deps.directory, now);
  const sessions = deps.sessions ?? new ConsoleSessions({ store: deps.repos.consoleCredentials, now });
  const hosts = new AllowedHosts(deps.publicUrl);
  const consoleApi = new ConsoleApi(deps.console, deps.inbound, user, logger, now);
  const stream = new EventStream({
    surface: deps.console,
    viewerId: user.userId,
    ...(deps.events ? { events: deps.events } : {}),
    ...(deps.transcript ? { steps: deps.transcript } : {}),
    ...(deps.clusterFeed ? { remote: deps.clusterFeed } : {}),
    ...(deps.sseHeartbeatMs !== undefined ? { heartbeatMs: deps.sseHeartbeatMs } : {}),
  });
  const mounts: Array<{ prefix: string; handler: MountedHandler }> = [];

  let server: Server | undefined;
  const app = Fastify({
    logger: false,
    bodyLimit: deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    return503OnClosing: false,
    serverFactory: (fastifyHandler) => {
      server = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0] ?? '/';
        const mounted = mounts.find((m) => path === m.prefix || path.startsWith(`${m.prefix}/`));
        if (mounted) {
          res.on('finish', () =>
            deps.metrics?.recordHttpRequest(req.method ?? 'GET', mounted.prefix, res.statusCode),
          );
          Promise.resolve(mounted.handler(req, res)).catch((err: unknown) => {
            logger.error({ err, path }, 'mounted handler failed');
            if (!res.headersSent) res.writeHead(500).end();
          });
          return;
        }
        ready.then(
          () => fastifyHandler(req, res),
          () => res.writeHead(503).end(),
        );
      });
      return server;
    },
  });
  // Only JSON bodies; the session routes add form bodies for the sign-in form.
  app.removeContentTypeParser('text/plain');

  const taskActions = new TaskActions(deps.inbound, user, deps.surfaceFor ?? (() => deps.console), now);
  const threadLink = (task: Task) =>
    task.channelId === user.channelId && task.threadTs ? `/#thread-${task.threadTs.replace('.', '-')}` : null;
  const ctx: RouteContext = {
    deps,
    logger,
    reads,
    consoleApi,
    stream,
    sessions,
    hosts,
    taskActions,
    threadLink,
    user,
  };
  const knownRoutes: Array<{ method: string; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const pattern = new RegExp(`^${route.url.replace(/:[^/]+/g, '[^/]+').replace(/\*/g, '.*')}$`);
    for (const method of methods) knownRoutes.push({ method, pattern });
  });
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics?.recordHttpRequest(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode);
  });

  void app.register(fastifyCookie);
  registerAccessControl(app, ctx);
  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => answerError(ctx, err, req, reply));
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    const allowed = [...new Set(knownRoutes.filter((r) => r.pattern.test(path)).map((r) => r.method))].filter(
      (m) => m !== 'HEAD',
    );
    if (allowed.length > 0 && !allowed.includes(req.method)) {
      void reply.header('allow', allowed.join(', '));
      return sendError(reply, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`);
    }
    return sendError(reply, 404, 'NOT_FOUND', `nothing at ${path}`);
  });
  registerHealthRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerApiRoutes(app, ctx);
  registerConsoleRoutes(app, ctx);
  registerPageRoutes(app, ctx);
  const ready: Promise<unknown> = Promise.resolve(app.ready());
  ready.catch((err: unknown) => logger.error({ err }, 'HTTP routes failed to load'));

  const httpServer = server as Server | undefined;
  if (!httpServer) throw new Error('Fastify did not create the HTTP server');
  httpServer.on('close', () => stream.close());

  return {
    server: httpServer,
    reads,
    sessions,
    mount(pathPrefix, handler) {
      const prefix = pathPrefix.endsWith('/') ? pathPrefix.slice(0, -1) : pathPrefix;
      if (!prefix.startsWith('/')) throw new Error(`mount path must start with "/": ${pathPrefix}`);
      mounts.push({ prefix, handler });
    },
    async close() {
      stream.close();
      await new Promise<void>((resolve, reject) => {
        if (!httpServer.listening) return resolve();
        httpServer.close((err) => (err ? reject(err) : resolve()));
        httpServer.closeIdleConnections();
      });
      await app.close();
    },
  };
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error: { code, message } });
}

function answerError(
  ctx: RouteContext,
  err: FastifyError | HttpError,
  req: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const known =
    err instanceof HttpError
      ? { status: err.status, code: err.code }
      : (FRAMEWORK_ERRORS[err.code] ??
        (err.statusCode && err.statusCode >= 400 && err.statusCode < 500
          ? { status: err.statusCode, code: err.code }
          : undefined));
  const path = req.url.split('?')[0] ?? '/';
  if (!known) {
    ctx.logger.error({ err, path }, 'request failed');
    return sendError(reply, 500, 'INTERNAL', 'the request could not be completed; see the server log');
  }
  if (known.status !== 404 && known.status !== 405) {
    ctx.logger.info({ path, code: known.code, detail: err.message }, 'bad request');
    void ctx.deps.audit?.record('http.bad_request', {
      actor: 'http',
      resourceType: 'route',
      resourceId: path,
      details: { code: known.code, message: err.message, method: req.method },
    });
  }
  // The rest of an oversized body is not worth reading: close the connection after answering.
  if (known.status === 413) void reply.header('connection', 'close');
  return sendError(reply, known.status, known.code, err.message);
}

export type { FastifyInstance };
