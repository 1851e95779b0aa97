import { type ExecutionOutcome, type ExecutionSink, type Executor, SleepExecutor } from '@bematic/agent';
import type { TaskSubmit } from '@bematic/protocol';
import { startTestSystem, type TestSystem } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

/** The sleep executor, reporting the token usage a real model run would. */
class TokenReportingExecutor implements Executor {
  private readonly inner = new SleepExecutor({ durationMs: 0 });
  constructor(private readonly usage: { inputTokens: number; outputTokens: number }) {}

  async execute(task: TaskSubmit, sink: ExecutionSink, signal: AbortSignal): Promise<ExecutionOutcome> {
    const outcome = await this.inner.execute(task, sink, signal);
    if (outcome.kind !== 'completed' || !outcome.payload.metrics) return outcome;
    return {
      ...outcome,
      payload: { ...outcome.payload, metrics: { ...outcome.payload.metrics, ...this.usage } },
    };
  }
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition → samples (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

/**
 * Every metrics collection point of the seed, observed by the running system:
 * a mention through the Slack emulator, Bolt, middleware, command service,
 * gateway and a real agent, then a second mention the rate limiter refuses.
 */
describe('metrics wiring: /metrics after a task runs end to end', () => {
  let system: TestSystem;
  const scrape = async () => {
    const res = await fetch(`${system.cloud.url}/metrics`);
    expect(res.status).toBe(200);
    return parseExposition(await res.text());
  };

  beforeAll(async () => {
    system = await startTestSystem({
      settings: { BEMATIC_RATE_LIMIT: '1' },
      executor: () => new TokenReportingExecutor({ inputTokens: 1200, outputTokens: 300 }),
    });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
  });
  afterAll(() => system?.close());

  it('records ingestion, processing, WebSocket, resource and business metrics', async () => {
    const done = new Promise<void>((resolve) => {
      const off = system.cloud.events.on('task.completed', () => {
        off();
        resolve();
      });
    });
    const mention = (text: string) =>
      system.emulator.mention({
        user: 'U0ALICE',
        channel: system.channel,
        text: `<@${system.emulator.botUserId}> ${text}`,
      });
    await mention('code fix the login bug in auth.ts');
    await done;
    await mention('code add a test for it');
    // Slack processing time is recorded when Bolt's handler returns, after the rate limiter refused.
    await vi.waitFor(
      async () =>
        expect(
          total(await scrape(), 'bematic_slack_event_processing_seconds_count', { event: 'app_mention' }),
        ).toBe(2),
      { timeout: 10_000, interval: 20 },
    );

    const s = await scrape();
    // 1. Request ingestion
    for (const stage of ['logging', 'auth', 'rate-limit', 'project', 'handler']) {
      expect.soft(total(s, 'bematic_middleware_stage_seconds_count', { stage }), stage).toBeGreaterThan(0);
    }
    expect.soft(total(s, 'bematic_rate_limit_hits_total', { scope: 'user' })).toBe(1);
    // 2. Task processing (the refused mention never reached bot resolution)
    expect.soft(total(s, 'bematic_bot_resolution_seconds_count')).toBe(1);
    expect.soft(total(s, 'bematic_model_routing_decisions_total', { bot: 'coder', tier: 'premium' })).toBe(1);
    expect.soft(total(s, 'bematic_task_queue_wait_seconds_count')).toBe(1);
    expect
      .soft(total(s, 'bematic_task_execution_seconds_count', { bot: 'coder', status: 'completed' }))
      .toBe(1);
    // 3. WebSocket operations: one agent connection, one TASK_SUBMIT answered by its ACK
    expect.soft(total(s, 'bematic_ws_connection_establishment_seconds_count')).toBe(1);
    expect.soft(total(s, 'bematic_ws_message_rtt_seconds_count', { type: 'TASK_SUBMIT' })).toBe(1);
    // 4. Resource utilisation
    expect
      .soft(total(s, 'bematic_db_query_seconds_count', { operation: 'select', outcome: 'ok' }))
      .toBeGreaterThan(0);
    expect
      .soft(total(s, 'bematic_db_query_seconds_count', { operation: 'insert', outcome: 'ok' }))
      .toBeGreaterThan(0);
    expect.soft(total(s, 'bematic_cache_lookups_total', { cache: 'cloud' })).toBeGreaterThan(0);
    // 5. Business metrics
    expect.soft(total(s, 'bematic_tokens_total', { kind: 'input' })).toBe(1200);
    expect.soft(total(s, 'bematic_tokens_total', { kind: 'output' })).toBe(300);
    expect.soft(total(s, 'bematic_task_outcomes_total', { status: 'completed', bot: 'coder' })).toBe(1);
  });
});
