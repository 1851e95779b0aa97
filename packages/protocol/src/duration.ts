/**
 * The one duration formatter.
 * - `elapsed` (default), for a measured time: "42s", "1m 05s", "2h 07m".
 * - `approx`, for a span or an ETA: "45s", "10 min", "2h 5m", "2d"; `roundUp` never understates a wait.
 */
export function formatDuration(
  ms: number | null,
  style: 'elapsed' | 'approx' = 'elapsed',
  opts: { roundUp?: boolean } = {},
): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return style === 'approx' ? 'unknown' : '—';
  const round = opts.roundUp ? Math.ceil : Math.round;
  if (style === 'elapsed') {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
    return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
  }
  if (ms < 60_000) return `${Math.max(opts.roundUp ? 1 : 0, round(ms / 1000))}s`;
  const minutes = round(ms / 60_000);
  const day = 60 * 24;
  if (minutes >= 2 * day && minutes % day === 0) return `${minutes / day}d`;
  if (minutes >= 60) {
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return m === 0 ? `${h}h` : `${h}h ${m}m`;
  }
  return `${minutes} min`;
}
