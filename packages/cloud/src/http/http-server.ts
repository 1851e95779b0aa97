import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { TASK_STATUSES, type TaskStatus } from '@bematic/protocol';
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { Cache } from '../cache/cache.js';
import { cacheKeys } from '../cache/cache-keys.js';
import type { InboundHandler } from '../chat/inbound.js';
import { type ConsoleChatSurface, DEFAULT_CONSOLE_CHANNEL } from '../console/console-surface.js';
import type { Repositories } from '../db/repositories/types.js';
import type { AgentDirectory } from '../gateway/types.js';
import type { MetricsCollector } from '../metrics/metrics-collector.js';
import type { TaskEvents } from '../tasks/task-events.js';
import { DEFAULT_MAX_BODY_BYTES, HttpError, readJson, sendError, sendJson } from './body.js';
import { ConsoleActionBody, ConsoleApi, ConsoleMessageBody } from './console-api.js';
import { renderDashboardPage } from './dashboard-page.js';
import { DashboardReads, MAX_LIST_WINDOW } from './dashboard-reads.js';
import { EventStream } from './event-stream.js';
import type { HealthProbes, ProbeResult } from './health.js';

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
  /** Bad requests are audited when given. */
  audit?: AuditTrail;
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
  /** End SSE streams and close the server. */
  close(): Promise<void>;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
}
type Handler = (ctx: Ctx) => Promise<void> | void;
interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  name: string;
  handler: Handler;
}

const ListTasksQuery = z.object({
  status: z
    .string()
    .optional()
    .transform((s) => (s ? s.split(',').filter(Boolean) : undefined))
    .pipe(z.array(z.enum(TASK_STATUSES)).optional()),
  project: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(MAX_LIST_WINDOW).default(0),
});
const AuditQuery = z.object({
  action: z.string().max(100).optional(),
  actor: z.string().max(200).optional(),
  resourceId: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export function createHttpServer(deps: HttpServerDeps): HttpServerHandle {
  const logger = deps.logger ?? pino({ level: 'silent' });
  const now = deps.now ?? Date.now;
  const maxBody = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const user = {
    userId: deps.consoleUserId ?? 'console-user',
    userName: deps.consoleUserName ?? 'You',
    channelId: deps.consoleChannelId ?? DEFAULT_CONSOLE_CHANNEL,
  };
  const reads = new DashboardReads(deps.repos, deps.cache);
  const consoleApi = new ConsoleApi(deps.console, deps.inbound, user, logger, now);
  const stream = new EventStream({
    surface: deps.console,
    viewerId: user.userId,
    ...(deps.events ? { events: deps.events } : {}),
    ...(deps.sseHeartbeatMs !== undefined ? { heartbeatMs: deps.sseHeartbeatMs } : {}),
  });
  const mounts: Array<{ prefix: string; handler: MountedHandler }> = [];
  const page = renderDashboardPage({ consoleChannelId: user.channelId, consoleUserId: user.userId });

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/$/,
      name: '/',
      handler: ({ res }) => {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          'content-security-policy':
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        });
        res.end(page);
      },
    },
    {
      method: 'GET',
      pattern: /^\/healthz$/,
      name: '/healthz',
      handler: ({ res }) => sendJson(res, 200, { status: 'ok' }),
    },
    {
      method: 'GET',
      pattern: /^\/readyz$/,
      name: '/readyz',
      handler: async ({ res }) => {
        const [database, gateway] = await Promise.all([
          probe(deps.health.database),
          probe(deps.health.gateway),
        ]);
        const ready = database.ok && gateway.ok;
        const reasons = [database, gateway].filter((p) => !p.ok).map((p) => p.detail ?? 'not ready');
        sendJson(res, ready ? 200 : 503, {
          status: ready ? 'ready' : 'not ready',
          checks: { database, gateway },
          reasons,
        });
      },
    },
    {
      method: 'GET',
      pattern: /^\/metrics$/,
      name: '/metrics',
      handler: async ({ res }) => {
        if (!deps.metrics) return sendError(res, 404, 'NOT_FOUND', 'metrics are not enabled');
        const text = await deps.metrics.text();
        res.writeHead(200, { 'content-type': deps.metrics.contentType });
        res.end(text);
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/tasks$/,
      name: '/api/tasks',
      handler: async ({ res, url }) => {
        const q = parseQuery(ListTasksQuery, url);
        const page = await reads.listTasks({
          limit: q.limit,
          offset: q.offset,
          ...(q.status ? { status: q.status as TaskStatus[] } : {}),
          ...(q.project ? { projectId: q.project } : {}),
        });
        sendJson(res, 200, page);
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/tasks\/([^/]+)$/,
      name: '/api/tasks/:id',
      handler: async ({ res, params }) => {
        const id = decodeURIComponent(params[0] ?? '');
        const task = await reads.getTask(id);
        if (!task) return sendError(res, 404, 'TASK_NOT_FOUND', `task ${id} not found`);
        sendJson(res, 200, { task });
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/agents$/,
      name: '/api/agents',
      handler: async ({ res }) => {
        // Live state changes every heartbeat; a short TTL only absorbs bursts of dashboard polls.
        const agents = await deps.cache.getOrLoad(
          cacheKeys.agentList(),
          () => deps.directory.listAgents(),
          1000,
        );
        sendJson(res, 200, { agents });
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/stats$/,
      name: '/api/stats',
      handler: async ({ res }) => sendJson(res, 200, await reads.stats()),
    },
    {
      method: 'GET',
      pattern: /^\/api\/projects$/,
      name: '/api/projects',
      handler: async ({ res }) => sendJson(res, 200, { projects: await reads.projects() }),
    },
    {
      method: 'GET',
      pattern: /^\/api\/audit$/,
      name: '/api/audit',
      handler: async ({ res, url }) => {
        const q = parseQuery(AuditQuery, url);
        const entries = await deps.repos.audit.list({
          limit: q.limit,
          ...(q.action ? { action: q.action } : {}),
          ...(q.actor ? { actor: q.actor } : {}),
          ...(q.resourceId ? { resourceId: q.resourceId } : {}),
        });
        sendJson(res, 200, { entries });
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/console\/threads$/,
      name: '/api/console/threads',
      handler: ({ res, url }) => {
        const channelId = url.searchParams.get('channel') ?? user.channelId;
        sendJson(res, 200, {
          channelId,
          userId: user.userId,
          threads: deps.console.threads(channelId, user.userId),
        });
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/console\/messages$/,
      name: '/api/console/messages',
      handler: async ({ req, res }) => {
        const body = await readJson(req, ConsoleMessageBody, maxBody);
        sendJson(res, 202, { ok: true, ...(await consoleApi.message(body)) });
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/console\/actions$/,
      name: '/api/console/actions',
      handler: async ({ req, res }) => {
        const body = await readJson(req, ConsoleActionBody, maxBody);
        sendJson(res, 202, { ok: true, ...consoleApi.action(body) });
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/events$/,
      name: '/api/events',
      handler: ({ res }) => stream.open(res),
    },
  ];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let routeName = 'unmatched';
    res.on('finish', () => deps.metrics?.recordHttpRequest(req.method ?? 'GET', routeName, res.statusCode));
    try {
      const mounted = mounts.find(
        (m) => url.pathname === m.prefix || url.pathname.startsWith(`${m.prefix}/`),
      );
      if (mounted) {
        routeName = mounted.prefix;
        await mounted.handler(req, res);
        return;
      }
      const matching = routes.filter((r) => r.pattern.test(url.pathname));
      const route = matching.find(
        (r) => r.method === req.method || (r.method === 'GET' && req.method === 'HEAD'),
      );
      if (!route) {
        if (matching.length > 0) {
          res.setHeader('allow', [...new Set(matching.map((r) => r.method))].join(', '));
          throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`);
        }
        throw new HttpError(404, 'NOT_FOUND', `nothing at ${url.pathname}`);
      }
      routeName = route.name;
      if (route.method === 'POST') checkSameOrigin(req);
      const params = route.pattern.exec(url.pathname)?.slice(1) ?? [];
      await route.handler({ req, res, url, params });
    } catch (err) {
      if (err instanceof HttpError) {
        if (err.status !== 404 && err.status !== 405) {
          logger.info({ path: url.pathname, code: err.code, detail: err.message }, 'bad request');
          void deps.audit?.record('http.bad_request', {
            actor: 'http',
            resourceType: 'route',
            resourceId: url.pathname,
            details: { code: err.code, message: err.message, method: req.method },
          });
        }
        // The rest of an oversized body is not worth reading: close the connection after answering.
        if (err.status === 413 && !res.headersSent) res.setHeader('connection', 'close');
        if (!res.headersSent) sendError(res, err.status, err.code, err.message);
        else res.end();
        return;
      }
      logger.error({ err, path: url.pathname }, 'request failed');
      if (!res.headersSent)
        sendError(res, 500, 'INTERNAL', 'the request could not be completed; see the server log');
      else res.end();
    }
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  // Malformed HTTP never reaches a handler; answer it instead of letting the socket hang.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.on('close', () => stream.close());

  return {
    server,
    reads,
    mount(pathPrefix, handler) {
      const prefix = pathPrefix.endsWith('/') ? pathPrefix.slice(0, -1) : pathPrefix;
      if (!prefix.startsWith('/')) throw new Error(`mount path must start with "/": ${pathPrefix}`);
      mounts.push({ prefix, handler });
    },
    close() {
      stream.close();
      return new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      });
    },
  };
}

async function probe(fn: () => ProbeResult | Promise<ProbeResult>): Promise<ProbeResult> {
  try {
    return await fn();
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

function parseQuery<T>(schema: z.ZodType<T>, url: URL): T {
  const parsed = schema.safeParse(Object.fromEntries(url.searchParams));
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ');
    throw new HttpError(400, 'INVALID_QUERY', detail);
  }
  return parsed.data;
}

/** Browsers send Origin on cross-site POSTs; refuse them so a web page cannot drive the local console. */
function checkSameOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new HttpError(403, 'FORBIDDEN_ORIGIN', 'unreadable Origin header');
  }
  if (host !== req.headers.host)
    throw new HttpError(403, 'FORBIDDEN_ORIGIN', `requests from ${origin} are not accepted`);
}
