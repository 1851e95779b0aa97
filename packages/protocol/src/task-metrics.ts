import type { TaskMetrics } from './messages.js';

/** The metrics that add up across tasks into totals (turns and continuations count per run). */
export const SUMMED_TASK_METRIC_KEYS = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheCreationTokens',
  'costUsd',
  'durationMs',
] as const satisfies readonly (keyof TaskMetrics)[];

/** Every field of TaskMetrics, in wire order: the one list the code iterates instead of spelling them out. */
export const TASK_METRIC_KEYS = [
  ...SUMMED_TASK_METRIC_KEYS,
  'numTurns',
  'continuations',
] as const satisfies readonly (keyof TaskMetrics)[];

export type SummedTaskMetrics = Pick<TaskMetrics, (typeof SUMMED_TASK_METRIC_KEYS)[number]>;

export const ZERO_TASK_METRICS: Readonly<TaskMetrics> = Object.freeze(
  Object.fromEntries(TASK_METRIC_KEYS.map((k) => [k, 0])) as TaskMetrics,
);

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
