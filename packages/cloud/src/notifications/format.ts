/** Small human-readable formatters shared by the blocks (durations: ../duration.ts). */
export function formatCost(usd: number): string {
  return usd < 0.01 && usd > 0 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

export function formatTokens(n: number): string {
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1)}M`;
  if (n >= 10_000) return `${Math.round(n / 1000)}k`;
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`;
  return String(n);
}

export function progressBar(used: number, limit: number, width = 10): string {
  const filled = limit <= 0 ? width : Math.min(width, Math.round((used / limit) * width));
  return `${'▓'.repeat(filled)}${'░'.repeat(width - filled)}`;
}

/** "1 continuation", "3 continuations". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
