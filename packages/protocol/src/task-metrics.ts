import type { TaskMetrics } from './messages.js';

/** Every field of TaskMetrics, in wire order: the one list the code iterates instead of spelling them out. */
export const TASK_METRIC_KEYS = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheCreationTokens',
  'costUsd',
  'durationMs',
  'numTurns',
  'continuations',
] as const satisfies readonly (keyof TaskMetrics)[];

/** The metrics that add up across tasks into totals (turns and continuations count per run). */
export const SUMMED_TASK_METRIC_KEYS = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheCreationTokens',
  'costUsd',
  'durationMs',
] as const satisfies readonly (typeof TASK_METRIC_KEYS)[number][];
export type SummedTaskMetrics = Pick<TaskMetrics, (typeof SUMMED_TASK_METRIC_KEYS)[number]>;

export const ZERO_TASK_METRICS: Readonly<TaskMetrics> = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  costUsd: 0,
  durationMs: 0,
  numTurns: 0,
  continuations: 0,
});

/** Just the metric fields of anything that carries them (a task row, a message). */
export function pickTaskMetrics(source: TaskMetrics): TaskMetrics {
  const out = { ...ZERO_TASK_METRICS };
  for (const k of TASK_METRIC_KEYS) out[k] = source[k];
  return out;
}

/** Field-by-field sum. */
export function sumTaskMetrics(list: readonly TaskMetrics[]): TaskMetrics {
  const out = { ...ZERO_TASK_METRICS };
  for (const m of list) for (const k of TASK_METRIC_KEYS) out[k] += m[k];
  return out;
}
