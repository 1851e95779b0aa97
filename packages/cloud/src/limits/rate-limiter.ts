import { createHash } from 'node:crypto';
import type pg from 'pg';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import { cloudSettingDefault } from '../config.js';

/** The table migration 010 creates for rate-limiter-flexible's PostgreSQL store (its own column layout). */
export const RATE_LIMIT_TABLE = 'rate_limits';
/** The store's key column is varchar(255): longer keys are counted under their hash. */
const MAX_KEY_CHARS = 200;

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
  /** Until the window ends and the count starts again (0 when nothing is counted). */
  resetInMs: number;
}

/**
 * Where counts live: in this process, or in PostgreSQL so that every cloud
 * instance on the database counts against the same allowance.
 */
export type RateLimitStore = { kind: 'memory' } | { kind: 'postgres'; pool: pg.Pool };

/**
 * The one rate limiter, rate-limiter-flexible's fixed window per key: a
 * user's tasks, an address's failed agent logins, a connection's invalid
 * frames. `name` keeps each use's keys apart in a shared store. The library
 * reads the time from Date.now (tests drive it with vi fake timers).
 */
export class RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly counter: RateLimiterAbstract;

  constructor(name: string, config: RateLimitConfig = {}, store: RateLimitStore = { kind: 'memory' }) {
    this.limit = config.limit ?? Number(cloudSettingDefault('BEMATIC_RATE_LIMIT'));
    this.windowMs = config.windowMs ?? Number(cloudSettingDefault('BEMATIC_RATE_WINDOW_MS'));
    const options = { keyPrefix: name, points: this.limit, duration: this.windowMs / 1000 };
    this.counter =
      store.kind === 'postgres'
        ? new RateLimiterPostgres({
            ...options,
            storeClient: store.pool,
            storeType: 'pool',
            tableName: RATE_LIMIT_TABLE,
            // Migration 010 made the table: no DDL at runtime.
            tableCreated: true,
            // The library deletes rows an hour past their window every 5 minutes (an unref'd timer),
            // so keys that never come back (failed logins from many addresses) do not pile up.
            clearExpiredByTimeout: true,
          })
        : new RateLimiterMemory(options);
  }

  async status(key: string): Promise<RateLimitStatus> {
    return this.view(await this.counter.get(storeKey(key)));
  }

  /** Counts one request if under the limit; false when limited (nothing is counted then). */
  async tryAcquire(key: string): Promise<boolean> {
    try {
      await this.counter.consume(storeKey(key));
      return true;
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      // The refused request was counted by the store: take it back so `used` stays true.
      await this.counter.reward(storeKey(key), 1);
      return false;
    }
  }

  /** Counts one hit whatever the count (e.g. a failure that already happened). */
  async record(key: string): Promise<void> {
    await this.counter.penalty(storeKey(key), 1);
  }

  /** At or over the limit. */
  async isLimited(key: string): Promise<boolean> {
    return (await this.status(key)).remaining <= 0;
  }

  /** Forgets every hit of a key (e.g. after a successful login). */
  async reset(key: string): Promise<void> {
    await this.counter.delete(storeKey(key));
  }

  /** Gives back a hit for a request that ended up creating nothing. */
  async release(key: string): Promise<void> {
    await this.counter.reward(storeKey(key), 1);
  }

  private view(res: RateLimiterRes | null): RateLimitStatus {
    // The memory store keeps an expired record until its timer fires: a window that is over counts nothing.
    const live = res !== null && res.msBeforeNext > 0;
    const used = live ? Math.min(this.limit, Math.max(0, res.consumedPoints)) : 0;
    return {
      used,
      limit: this.limit,
      remaining: this.limit - used,
      resetInMs: live && used > 0 ? res.msBeforeNext : 0,
    };
  }
}

function storeKey(key: string): string {
  return key.length <= MAX_KEY_CHARS ? key : createHash('sha256').update(key).digest('hex');
}
