export interface RateLimitRule {
  /** Answer 429 for the next `count` calls of the method. */
  count?: number;
  /** Or: answer 429 to every call of the method until this many ms have passed (a storm). */
  forMs?: number;
  /** Sent as the Retry-After header (Slack sends whole seconds; @slack/web-api reads whole seconds). */
  retryAfterSec?: number;
}

/** Slack's real limits for a method, enforced as it does: a call over either bound gets 429. */
export interface EnforcedLimit {
  /** Calls per second to one channel (chat.postMessage and chat.update: about 1, with short bursts). */
  perChannelPerSecond?: number;
  /** Calls per minute in the workspace (the method's tier: 1 = 1, 2 = 20, 3 = 50, 4 = 100). */
  perMinute?: number;
}

interface ActiveRule {
  remaining: number;
  until: number;
  retryAfterSec: number;
}

/** Per-method 429 injection; '*' matches every method. */
export class RateLimits {
  private readonly rules = new Map<string, ActiveRule>();
  private readonly enforced = new Map<string, EnforcedLimit>();
  /** Accepted call times per method, and per method and channel. */
  private readonly accepted = new Map<string, number[]>();

  constructor(private readonly now: () => number) {}

  set(method: string, rule: RateLimitRule): void {
    this.rules.set(method, {
      remaining: rule.count ?? (rule.forMs === undefined ? 1 : 0),
      until: rule.forMs === undefined ? 0 : this.now() + rule.forMs,
      retryAfterSec: rule.retryAfterSec ?? 1,
    });
  }

  enforce(method: string, limit: EnforcedLimit): void {
    this.enforced.set(method, limit);
  }

  clear(method?: string): void {
    if (method === undefined) {
      this.rules.clear();
      this.enforced.clear();
    } else {
      this.rules.delete(method);
      this.enforced.delete(method);
    }
  }

  /** Retry-After seconds when this call must be rejected, otherwise undefined. */
  check(method: string, channel?: string): number | undefined {
    const injected = this.injected(method);
    if (injected !== undefined) return injected;
    const limit = this.enforced.get(method);
    if (!limit) return undefined;
    const now = this.now();
    const over = (key: string, windowMs: number, max: number | undefined): number | undefined => {
      if (max === undefined) return undefined;
      const times = (this.accepted.get(key) ?? []).filter((t) => t > now - windowMs);
      this.accepted.set(key, times);
      if (times.length < max) return undefined;
      return Math.max(1, Math.ceil(((times[0] ?? now) + windowMs - now) / 1000));
    };
    const perChannel = channel ? over(`${method}#${channel}`, 1000, limit.perChannelPerSecond) : undefined;
    const perMinute = over(method, 60_000, limit.perMinute);
    if (perChannel !== undefined || perMinute !== undefined) return Math.max(perChannel ?? 0, perMinute ?? 0);
    for (const key of channel ? [method, `${method}#${channel}`] : [method]) {
      this.accepted.set(key, [...(this.accepted.get(key) ?? []), now]);
    }
    return undefined;
  }

  private injected(method: string): number | undefined {
    for (const key of [method, '*']) {
      const rule = this.rules.get(key);
      if (!rule) continue;
      if (rule.until > this.now()) return rule.retryAfterSec;
      if (rule.remaining > 0) {
        rule.remaining -= 1;
        return rule.retryAfterSec;
      }
      this.rules.delete(key);
    }
    return undefined;
  }
}
