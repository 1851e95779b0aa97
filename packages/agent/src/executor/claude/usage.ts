import type { TaskMetrics, TaskUsage } from '@bematic/protocol';

/** What one query() invocation reports in its result message. */
export interface InvocationUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  costUsd: number;
  numTurns: number;
}

export interface ResultUsageFields {
  total_cost_usd: number;
  num_turns: number;
  modelUsage: Record<
    string,
    {
      inputTokens: number;
      outputTokens: number;
      cacheReadInputTokens: number;
      cacheCreationInputTokens: number;
    }
  >;
}

/** Sums the per-model totals of one result message (main loop, subagents and helper calls alike). */
export function usageOfResult(result: ResultUsageFields): InvocationUsage {
  const u: InvocationUsage = {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheCreationTokens: 0,
    costUsd: Math.max(0, result.total_cost_usd),
    numTurns: Math.max(0, result.num_turns),
  };
  for (const m of Object.values(result.modelUsage)) {
    u.inputTokens += m.inputTokens;
    u.outputTokens += m.outputTokens;
    u.cacheReadTokens += m.cacheReadInputTokens;
    u.cacheCreationTokens += m.cacheCreationInputTokens;
  }
  return u;
}

const EMPTY: InvocationUsage = {
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  costUsd: 0,
  numTurns: 0,
};

/** Counters a resumed session carries over from its transcript; num_turns is not one of them. */
const CUMULATIVE_KEYS = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheCreationTokens',
  'costUsd',
] as const;

/**
 * Aggregates usage across the invocations of one task (first run + auto-continuations).
 * A resumed session starts its token and cost counters from the totals its transcript
 * saved, so when the session's previous totals are known (`baseline`) and the new
 * result has grown from them, only the growth is added.
 */
export class UsageAggregator {
  private total: InvocationUsage = { ...EMPTY };
  private invocations = 0;

  add(usage: InvocationUsage, baseline: InvocationUsage | undefined): void {
    const carried = baseline !== undefined && CUMULATIVE_KEYS.every((k) => usage[k] >= baseline[k]);
    for (const k of CUMULATIVE_KEYS) this.total[k] += carried ? usage[k] - baseline[k] : usage[k];
    this.total.numTurns += usage.numTurns;
    this.invocations += 1;
  }

  get costUsd(): number {
    return this.total.costUsd;
  }

  metrics(durationMs: number): TaskMetrics {
    return {
      inputTokens: Math.round(this.total.inputTokens),
      outputTokens: Math.round(this.total.outputTokens),
      cacheReadTokens: Math.round(this.total.cacheReadTokens),
      cacheCreationTokens: Math.round(this.total.cacheCreationTokens),
      costUsd: Math.round(this.total.costUsd * 1e6) / 1e6,
      durationMs: Math.max(0, Math.round(durationMs)),
      numTurns: Math.round(this.total.numTurns),
      continuations: Math.max(0, this.invocations - 1),
    };
  }
}

/** The usage an assistant message carries (the Messages API's, as Claude Code passes it on). */
export interface MessageUsageFields {
  input_tokens?: number | null;
  output_tokens?: number | null;
}

const count = (n: number | null | undefined): number =>
  typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0;

/**
 * The running totals shown while a task runs. One model response reaches us several times: as the
 * stream's message_start and message_delta events and as one assistant message per content block, each
 * repeating that response's usage as it stood (growing as it streams). So each response counts once, with
 * the largest usage seen for its id. A turn is one response of the main loop (subagents' responses add
 * tokens, not turns). Ids are unique across the invocations of a task, so the totals span continuations.
 */
export class LiveUsage {
  private readonly responses = new Map<string, { input: number; output: number }>();
  private readonly turnIds = new Set<string>();
  private input = 0;
  private output = 0;

  note(messageId: string, usage: MessageUsageFields | null | undefined, mainLoop: boolean): void {
    if (mainLoop) this.turnIds.add(messageId);
    if (!usage) return;
    const previous = this.responses.get(messageId) ?? { input: 0, output: 0 };
    const latest = {
      input: Math.max(previous.input, count(usage.input_tokens)),
      output: Math.max(previous.output, count(usage.output_tokens)),
    };
    this.input += latest.input - previous.input;
    this.output += latest.output - previous.output;
    this.responses.set(messageId, latest);
  }

  /** The totals so far; `costUsd` is what the finished invocations reported (0: none has yet). */
  snapshot(costUsd: number): TaskUsage {
    return {
      inputTokens: Math.round(this.input),
      outputTokens: Math.round(this.output),
      turns: this.turnIds.size,
      ...(costUsd > 0 && { costUsd: Math.round(costUsd * 1e6) / 1e6 }),
    };
  }
}
