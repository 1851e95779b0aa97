import type { AuditLogRepository } from '../db/repositories/types.js';
import { rateLimitMessage } from '../notifications/blocks.js';
import { createsTask, type Middleware, rejectRequest } from './types.js';

export interface RateLimitConfig {
  /** Tasks per user per window (default 20). */
  limit?: number;
  /** Window length (default one hour). */
  windowMs?: number;
}

export interface RateLimitStatus {
  used: number;
  limit: number;
  remaining: number;
  /** Until the oldest counted request leaves the window (0 when nothing is counted). */
  resetInMs: number;
}

/** Sliding-window counter per user; the computed status is cached until the next change or expiry. */
export class SlidingWindowRateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly hits = new Map<string, number[]>();
  private readonly cache = new Map<string, { status: RateLimitStatus; at: number; validUntil: number }>();

  constructor(
    config: RateLimitConfig = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limit = config.limit ?? 20;
    this.windowMs = config.windowMs ?? 3_600_000;
  }

  status(userId: string): RateLimitStatus {
    const now = this.now();
    const cached = this.cache.get(userId);
    if (cached && now < cached.validUntil && now >= cached.at) {
      return { ...cached.status, resetInMs: Math.max(0, cached.status.resetInMs - (now - cached.at)) };
    }
    const list = (this.hits.get(userId) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length) this.hits.set(userId, list);
    else this.hits.delete(userId);
    const oldest = list[0];
    const status: RateLimitStatus = {
      used: list.length,
      limit: this.limit,
      remaining: Math.max(0, this.limit - list.length),
      resetInMs: oldest === undefined ? 0 : oldest + this.windowMs - now,
    };
    this.cache.set(userId, {
      status,
      at: now,
      validUntil: oldest === undefined ? Number.POSITIVE_INFINITY : oldest + this.windowMs,
    });
    return status;
  }

  /** Counts one request if under the limit; returns the hit's timestamp (for release) or null when limited. */
  tryAcquire(userId: string): number | null {
    if (this.status(userId).remaining <= 0) return null;
    const at = this.now();
    const list = this.hits.get(userId) ?? [];
    list.push(at);
    this.hits.set(userId, list);
    this.cache.delete(userId);
    return at;
  }

  /** Gives back a hit for a request that ended up creating nothing. */
  release(userId: string, at: number): void {
    const list = this.hits.get(userId);
    const i = list?.indexOf(at) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    this.cache.delete(userId);
  }
}

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
