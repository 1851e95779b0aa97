import { randomUUID } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { InboundHandler, InboundRequest } from '../chat/inbound.js';
import type { AuditLogRepository, ProjectRepository, UserRepository } from '../db/repositories/types.js';
import { type AuthConfig, createAuthMiddleware } from '../middleware/auth.js';
import { createLoggingMiddleware } from '../middleware/logging.js';
import { runPipeline } from '../middleware/pipeline.js';
import { createProjectMiddleware } from '../middleware/project.js';
import {
  createRateLimitMiddleware,
  type RateLimitConfig,
  RateLimiter,
  type RateLimitStore,
} from '../middleware/rate-limit.js';
import { type Middleware, newContext, type StageObserver } from '../middleware/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import type { CommandService } from './command-service.js';

export interface InboundPipelineDeps {
  commands: CommandService;
  repos: { users: UserRepository; projects: ProjectRepository; audit: AuditLogRepository };
  logger?: Logger;
  auth?: AuthConfig;
  rateLimit?: RateLimitConfig;
  /** Where the per-user counts live (default: memory; PostgreSQL shares them between instances). */
  rateLimitStore?: RateLimitStore;
  /** Per-stage timing (ms) for metrics. */
  observe?: StageObserver;
  /** Each request the rate limiter refuses, for metrics. */
  onRateLimited?: (scope: string) => void;
  limiter?: RateLimiter;
}

/** logging → auth → rate-limit → project → command service, for every chat surface. */
export function createInboundPipeline(deps: InboundPipelineDeps): InboundHandler & { limiter: RateLimiter } {
  const logger = deps.logger ?? pino({ level: 'silent' });
  const { users, projects, audit } = deps.repos;
  const limiter = deps.limiter ?? new RateLimiter('user-tasks', deps.rateLimit, deps.rateLimitStore);
  const stages: Middleware[] = [
    createLoggingMiddleware(logger),
    createAuthMiddleware({ users, audit, logger }, deps.auth),
    createRateLimitMiddleware({
      limiter,
      audit,
      ...(deps.onRateLimited && { onLimited: deps.onRateLimited }),
    }),
    createProjectMiddleware({ projects, audit, logger }),
  ];
  return {
    limiter,
    async handle(request: InboundRequest) {
      const ctx = newContext(request, randomUUID());
      try {
        await runPipeline(ctx, stages, (c) => deps.commands.handle(c), deps.observe);
      } catch (err) {
        logger.error({ err, requestId: ctx.requestId }, 'inbound request failed');
        await audit
          .log({
            action: 'request.failed',
            actor: request.userId,
            resourceType: 'channel',
            resourceId: request.channelId,
            details: { error: err instanceof Error ? err.message : String(err), kind: request.kind },
          })
          .catch(() => {});
        await request
          .respond(
            noticeMessage('Something went wrong handling that request; it has been logged.', ':warning:'),
          )
          .catch(() => {});
      }
    },
  };
}
