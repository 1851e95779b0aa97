/**
 * How long a failed chat call asks us to wait: Slack's 429 carries Retry-After
 * (the Web API client exposes it as `retryAfter` seconds); null when unknown.
 */
export function retryAfterMs(err: unknown): number | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as Record<string, unknown>;
  if (typeof e.retryAfterMs === 'number') return e.retryAfterMs;
  if (typeof e.retryAfter === 'number') return e.retryAfter * 1000;
  const data = e.data as Record<string, unknown> | undefined;
  if (data && typeof data.retryAfter === 'number') return data.retryAfter * 1000;
  return null;
}
