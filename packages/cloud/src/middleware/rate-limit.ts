import type { AuditLogRepository } from '../db/repositories/types.js';
import type { SlidingWindowRateLimiter } from '../limits/sliding-window.js';
import { rateLimitMessage } from '../notifications/blocks.js';
import { createsTask, type Middleware, rejectRequest } from './types.js';

export {
  type RateLimitConfig,
  type RateLimitStatus,
  SlidingWindowRateLimiter,
} from '../limits/sliding-window.js';

export function createRateLimitMiddleware(deps: {
  limiter: SlidingWindowRateLimiter;
  audit: AuditLogRepository;
  /** Told about every refused request (metrics). */
  onLimited?: (scope: 'user') => void;
}): Middleware {
  return {
    name: 'rate-limit',
    async run(ctx, next) {
      if (!createsTask(ctx.request)) return next();
      const userId = ctx.request.userId;
      const hit = deps.limiter.tryAcquire(userId);
      if (hit === null) {
        deps.onLimited?.('user');
        const s = deps.limiter.status(userId);
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
        if (ctx.tasksCreated === 0) deps.limiter.release(userId, hit);
      }
    },
  };
}
