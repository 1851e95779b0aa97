export * from './app/cloud.js';
export * from './app/mcp-config.js';
export * from './app/provisioning.js';
export * from './audit/audit-trail.js';
export * from './bots/index.js';
export * from './cache/cache.js';
export * from './cache/cache-keys.js';
export * from './cache/invalidation.js';
export * from './chat/chat-surface.js';
export * from './chat/inbound.js';
export * from './cluster/index.js';
export * from './commands/index.js';
export * from './config.js';
export * from './console/console-surface.js';
export * from './db/index.js';
export * from './db/repositories/types.js';
export * from './gateway/index.js';
export * from './gateway/types.js';
export { ConsoleSessions, SESSION_COOKIE } from './http/access/console-session.js';
export {
  type AgentPage,
  DashboardReads,
  type DashboardStats,
  type TaskPage,
  type TaskSummary,
} from './http/dashboard-reads.js';
export { databaseProbe, type HealthProbes, type ProbeResult } from './http/health.js';
export {
  createHttpServer,
  type HttpServerDeps,
  type HttpServerHandle,
  type MountedHandler,
} from './http/http-server.js';
export { secretSafeLogOptions } from './logging/secret-safe.js';
export * from './metrics/metrics-collector.js';
export * from './middleware/index.js';
export * from './notifications/index.js';
export * from './retention/retention-service.js';
export * from './slack/index.js';
export * from './tasks/task-events.js';
export * from './transcript/transcript-recorder.js';
