import { cloudSettingDefault } from '../config.js';

/** Above this many tracked keys, keys whose hits have all expired are dropped. */
const MAX_KEYS = 10_000;

export interface RateLimitConfig {
  /** Hits per key per window (default: BEMATIC_RATE_LIMIT's). */
  limit?: number;
  /** Default: BEMATIC_RATE_WINDOW_MS's. */
  windowMs?: number;
}

export interface RateLimitStatus {
  used: number;
  limit: number;
  remaining: number;
  /** Until the oldest counted request leaves the window (0 when nothing is counted). */
  resetInMs: number;
}

/**
 * The one rate limiter: a sliding-window counter per key (a user's tasks, an
 * address's failed logins, a connection's invalid frames). The computed status
 * is cached until the next change or expiry.
 */
export class SlidingWindowRateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly hits = new Map<string, number[]>();
  private readonly cache = new Map<string, { status: RateLimitStatus; at: number; validUntil: number }>();

  constructor(
    config: RateLimitConfig = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limit = config.limit ?? Number(cloudSettingDefault('BEMATIC_RATE_LIMIT'));
    this.windowMs = config.windowMs ?? Number(cloudSettingDefault('BEMATIC_RATE_WINDOW_MS'));
  }

  status(key: string): RateLimitStatus {
    const now = this.now();
    const cached = this.cache.get(key);
    if (cached && now < cached.validUntil && now >= cached.at) {
      return { ...cached.status, resetInMs: Math.max(0, cached.status.resetInMs - (now - cached.at)) };
    }
    const list = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length) this.hits.set(key, list);
    else this.hits.delete(key);
    const oldest = list[0];
    const status: RateLimitStatus = {
      used: list.length,
      limit: this.limit,
      remaining: Math.max(0, this.limit - list.length),
      resetInMs: oldest === undefined ? 0 : oldest + this.windowMs - now,
    };
    this.cache.set(key, {
      status,
      at: now,
      validUntil: oldest === undefined ? Number.POSITIVE_INFINITY : oldest + this.windowMs,
    });
    return status;
  }

  /** Counts one request if under the limit; returns the hit's timestamp (for release) or null when limited. */
  tryAcquire(key: string): number | null {
    if (this.status(key).remaining <= 0) return null;
    const at = this.now();
    const list = this.hits.get(key) ?? [];
    list.push(at);
    this.hits.set(key, list);
    this.cache.delete(key);
    return at;
  }

  /** Counts one hit whatever the count (e.g. a failure that already happened). */
  record(key: string): void {
    const list = this.hits.get(key) ?? [];
    list.push(this.now());
    this.hits.set(key, list);
    this.cache.delete(key);
    if (this.hits.size > MAX_KEYS) this.prune();
  }

  /** At or over the limit. */
  isLimited(key: string): boolean {
    return this.status(key).remaining <= 0;
  }

  /** Forgets every hit of a key (e.g. after a successful login). */
  reset(key: string): void {
    this.hits.delete(key);
    this.cache.delete(key);
  }

  /** Gives back a hit for a request that ended up creating nothing. */
  release(key: string, at: number): void {
    const list = this.hits.get(key);
    const i = list?.indexOf(at) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    this.cache.delete(key);
  }

  private prune(): void {
    for (const key of [...this.hits.keys()]) this.status(key);
    for (const key of [...this.cache.keys()]) if (!this.hits.has(key)) this.cache.delete(key);
  }
}
