import { describe, expect, it } from 'vitest';
import { type InvocationUsage, UsageAggregator, usageOfResult } from './usage.js';

const u = (input: number, cost: number, turns: number): InvocationUsage => ({
  inputTokens: input,
  outputTokens: input / 10,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  costUsd: cost,
  numTurns: turns,
});

describe('usage', () => {
  it('sums the per-model totals of a result', () => {
    const usage = usageOfResult({
      total_cost_usd: 0.5,
      num_turns: 3,
      modelUsage: {
        a: { inputTokens: 10, outputTokens: 2, cacheReadInputTokens: 3, cacheCreationInputTokens: 4 },
        b: { inputTokens: 5, outputTokens: 1, cacheReadInputTokens: 0, cacheCreationInputTokens: 1 },
      },
    });
    expect(usage).toEqual({
      inputTokens: 15,
      outputTokens: 3,
      cacheReadTokens: 3,
      cacheCreationTokens: 5,
      costUsd: 0.5,
      numTurns: 3,
    });
  });

  it('adds only the growth of a resumed session whose totals carried over', () => {
    const agg = new UsageAggregator();
    agg.add(u(100, 1, 2), undefined);
    agg.add(u(250, 2.5, 2), u(100, 1, 2));
    expect(agg.metrics(42)).toEqual({
      inputTokens: 250,
      outputTokens: 25,
      cacheReadTokens: 0,
      cacheCreationTokens: 0,
      costUsd: 2.5,
      durationMs: 42,
      numTurns: 4,
      continuations: 1,
    });
  });

  it('adds a fresh count whole when it did not grow from the baseline', () => {
    const agg = new UsageAggregator();
    agg.add(u(100, 1, 1), undefined);
    agg.add(u(40, 0.4, 1), u(100, 1, 1));
    expect(agg.metrics(0)).toMatchObject({ inputTokens: 140, costUsd: 1.4, numTurns: 2 });
  });
});
