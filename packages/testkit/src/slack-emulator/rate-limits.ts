export interface RateLimitRule {
  /** Answer 429 for the next `count` calls of the method. */
  count?: number;
  /** Or: answer 429 to every call of the method until this many ms have passed (a storm). */
  forMs?: number;
  /** Sent as the Retry-After header (Slack sends whole seconds; @slack/web-api reads whole seconds). */
  retryAfterSec?: number;
}

interface ActiveRule {
  remaining: number;
  until: number;
  retryAfterSec: number;
}

/** Per-method 429 injection; '*' matches every method. */
export class RateLimits {
  private readonly rules = new Map<string, ActiveRule>();

  constructor(private readonly now: () => number) {}

  set(method: string, rule: RateLimitRule): void {
    this.rules.set(method, {
      remaining: rule.count ?? (rule.forMs === undefined ? 1 : 0),
      until: rule.forMs === undefined ? 0 : this.now() + rule.forMs,
      retryAfterSec: rule.retryAfterSec ?? 1,
    });
  }

  clear(method?: string): void {
    if (method === undefined) this.rules.clear();
    else this.rules.delete(method);
  }

  /** Retry-After seconds when this call must be rejected, otherwise undefined. */
  check(method: string): number | undefined {
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
