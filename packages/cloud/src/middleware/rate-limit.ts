import type { AuditLogRepository } from '../db/repositories/types.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import { rateLimitMessage } from '../notifications/blocks.js';
import { createsTask, type Middleware, rejectRequest } from './types.js';

export {
  type RateLimitConfig,
  RateLimiter,
  type RateLimitStatus,
  type RateLimitStore,
} from '../limits/rate-limiter.js';

export function createRateLimitMiddleware(deps: {
  limiter: RateLimiter;
  audit: AuditLogRepository;
  /** Told about every refused request (metrics). */
  onLimited?: (scope: 'user') => void;
}): Middleware {
  return {
    name: 'rate-limit',
    async run(ctx, next) {
      if (!createsTask(ctx.request)) return next();
      const userId = ctx.request.userId;
      if (!(await deps.limiter.tryAcquire(userId))) {
        deps.onLimited?.('user');
        const s = await deps.limiter.status(userId);
        await rejectRequest(ctx, deps.audit, 'rate_limited', rateLimitMessage(s), {
          used: s.used,
          limit: s.limit,
          resetInMs: s.resetInMs,
        });
        return;
      }
      try {
        await next();
      } finally {
        // Only requests that really created a task use up the allowance.
        if (ctx.tasksCreated === 0) await deps.limiter.release(userId);
      }
    },
  };
}
