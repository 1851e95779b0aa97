import { describe, expect, it } from 'vitest';
import { type InvocationUsage, LiveUsage, UsageAggregator, usageOfResult } from './usage.js';

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

describe('LiveUsage', () => {
  it('counts each model response once, with the latest usage its repeated messages carry', () => {
    const live = new LiveUsage();
    // One response streamed as two content blocks: Claude Code repeats its usage, growing.
    live.note('msg_1', { input_tokens: 10, output_tokens: 1 }, true);
    live.note('msg_1', { input_tokens: 10, output_tokens: 5 }, true);
    expect(live.snapshot(0)).toEqual({ inputTokens: 10, outputTokens: 5, turns: 1 });
    live.note('msg_2', { input_tokens: 20, output_tokens: 7 }, true);
    live.note('msg_2', { input_tokens: 20, output_tokens: 7 }, true);
    expect(live.snapshot(0)).toEqual({ inputTokens: 30, outputTokens: 12, turns: 2 });
  });

  it("adds a subagent's tokens but not its turns, and tolerates missing usage", () => {
    const live = new LiveUsage();
    live.note('main_1', { input_tokens: 3, output_tokens: 2 }, true);
    live.note('sub_1', { input_tokens: 100, output_tokens: 40 }, false);
    live.note('main_2', undefined, true);
    live.note('main_3', { input_tokens: null, output_tokens: Number.NaN }, true);
    expect(live.snapshot(0)).toEqual({ inputTokens: 103, outputTokens: 42, turns: 3 });
  });

  it('reports the cost of finished invocations once there is one', () => {
    const live = new LiveUsage();
    live.note('m', { input_tokens: 1, output_tokens: 1 }, true);
    expect(live.snapshot(0.0123456789)).toEqual({
      inputTokens: 1,
      outputTokens: 1,
      turns: 1,
      costUsd: 0.012346,
    });
  });
});
