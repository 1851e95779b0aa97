/** Small human-readable formatters shared by the blocks. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function formatCost(usd: number): string {
  return usd < 0.01 && usd > 0 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

export function formatTokens(n: number): string {
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1)}M`;
  if (n >= 10_000) return `${Math.round(n / 1000)}k`;
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`;
  return String(n);
}

/** "in 3 min", "in about 1 h", for ETAs. */
export function formatEta(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return 'unknown';
  if (ms < 60_000) return `${Math.max(1, Math.ceil(ms / 1000))} s`;
  const min = Math.ceil(ms / 60_000);
  return min < 90 ? `${min} min` : `${Math.round(min / 60)} h`;
}

export function progressBar(used: number, limit: number, width = 10): string {
  const filled = limit <= 0 ? width : Math.min(width, Math.round((used / limit) * width));
  return `${'▓'.repeat(filled)}${'░'.repeat(width - filled)}`;
}

/** "1 continuation", "3 continuations". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
