import { describe, expect, it } from 'vitest';
import { TaskMetrics } from './messages.js';
import { pickTaskMetrics, sumTaskMetrics, TASK_METRIC_KEYS, ZERO_TASK_METRICS } from './task-metrics.js';

describe('task metrics', () => {
  it('lists exactly the fields of the wire schema', () => {
    expect([...TASK_METRIC_KEYS].sort()).toEqual(Object.keys(TaskMetrics.shape).sort());
    expect(TaskMetrics.parse(ZERO_TASK_METRICS)).toEqual(ZERO_TASK_METRICS);
  });

  it('picks the metric fields and sums them field by field', () => {
    const a = { ...ZERO_TASK_METRICS, inputTokens: 3, costUsd: 0.5, extra: 'x' };
    const b = { ...ZERO_TASK_METRICS, inputTokens: 4, numTurns: 2 };
    expect(pickTaskMetrics(a)).toEqual({ ...ZERO_TASK_METRICS, inputTokens: 3, costUsd: 0.5 });
    expect(sumTaskMetrics([a, b])).toEqual({
      ...ZERO_TASK_METRICS,
      inputTokens: 7,
      costUsd: 0.5,
      numTurns: 2,
    });
    expect(sumTaskMetrics([])).toEqual(ZERO_TASK_METRICS);
  });
});
