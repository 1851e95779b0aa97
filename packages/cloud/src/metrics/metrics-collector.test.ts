import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { TaskMetrics } from '@bematic/protocol';
import { describe, expect, it } from 'vitest';
import type { Task } from '../db/repositories/types.js';
import { TaskEvents } from '../tasks/task-events.js';
import { MetricsCollector } from './metrics-collector.js';

const usage: TaskMetrics = {
  inputTokens: 1000,
  outputTokens: 200,
  cacheReadTokens: 30,
  cacheCreationTokens: 4,
  costUsd: 0.25,
  durationMs: 12_000,
  numTurns: 2,
  continuations: 0,
};
const task = (id: string, over: Partial<Task> = {}) =>
  ({ id, botName: 'coder', createdAt: 1000, startedAt: null, ...over }) as Task;

describe('MetricsCollector', () => {
  it('records task outcomes, tokens, cost, queue wait, heartbeats and circuits from the event bus', async () => {
    let now = 10_000;
    const m = new MetricsCollector({ defaultMetrics: false, now: () => now });
    const events = new TaskEvents();
    m.attachToEvents(events);

    events.emit('task.submitted', { task: task('t1') });
    now = 12_500;
    events.emit('task.started', { task: task('t1', { startedAt: 12_500 }) });
    events.emit('task.completed', {
      task: task('t1'),
      message: { taskId: 't1', attempt: 1, result: 'ok', metrics: usage, filesChanged: [], commandsRun: [] },
    });
    events.emit('task.failed', {
      task: task('t2'),
      message: {
        taskId: 't2',
        attempt: 1,
        error: 'budget',
        recoverable: false,
        errorCode: 'BUDGET_EXCEEDED',
      },
    });
    const resources = {
      cpuPercent: 42,
      memoryPercent: 61,
      rssMb: 100,
      loadAvg1m: 1,
      activeTasks: 2,
      queuedTasks: 0,
    };
    events.emit('agent.heartbeat', { agentId: 'a1', rttMs: 8, metrics: resources });
    events.emit('circuit.changed', { agentId: 'a1', from: 'closed', to: 'open' });

    const text = await m.text();
    expect(text).toContain('bematic_task_outcomes_total{status="completed",bot="coder"} 1');
    expect(text).toContain('bematic_task_outcomes_total{status="failed",bot="coder"} 1');
    expect(text).toContain('bematic_task_errors_total{code="BUDGET_EXCEEDED"} 1');
    expect(text).toContain('bematic_tokens_total{kind="input"} 1000');
    expect(text).toContain('bematic_tokens_total{kind="cache_creation"} 4');
    expect(text).toContain('bematic_cost_usd_total{bot="coder"} 0.25');
    expect(text).toContain('bematic_task_execution_seconds_sum{bot="coder",status="completed"} 12');
    expect(text).toContain('bematic_task_queue_wait_seconds_sum 2.5');
    expect(text).toContain('bematic_heartbeat_rtt_seconds_sum 0.008');
    expect(text).toContain('bematic_agent_cpu_percent{agent="a1"} 42');
    expect(text).toContain('bematic_agent_memory_percent{agent="a1"} 61');
    expect(text).toContain('bematic_circuit_breaker_transitions_total{from="closed",to="open"} 1');
  });

  it('exposes ingestion, routing, cache, database and queue series', async () => {
    const m = new MetricsCollector({ defaultMetrics: false });
    m.observeMiddlewareStage('auth', 5);
    m.recordRateLimitHit();
    m.recordModelRouting('coder', 'premium');
    m.recordCacheLookup('dashboard', true);
    m.recordCacheLookup('dashboard', true);
    m.recordCacheLookup('dashboard', true);
    m.recordCacheLookup('dashboard', false);
    m.trackOfflineQueueDepth(async () => ({ a1: 3 }));
    m.kyselyLogHook({
      level: 'query',
      query: { sql: 'select * from tasks', parameters: [], query: { kind: 'SelectQueryNode' } },
      queryDurationMillis: 2,
    } as unknown as Parameters<MetricsCollector['kyselyLogHook']>[0]);

    const text = await m.text();
    expect(text).toContain('bematic_middleware_stage_seconds_count{stage="auth"} 1');
    expect(text).toContain('bematic_rate_limit_hits_total{scope="user"} 1');
    expect(text).toContain('bematic_model_routing_decisions_total{bot="coder",tier="premium"} 1');
    expect(text).toContain('bematic_cache_hit_ratio{cache="dashboard"} 0.75');
    expect(text).toContain('bematic_cache_lookups_total{cache="dashboard",result="miss"} 1');
    expect(text).toContain('bematic_offline_queue_depth{agent="a1"} 3');
    expect(text).toContain('bematic_db_query_seconds_count{operation="select",outcome="ok"} 1');
  });

  it('keeps registries separate and includes process metrics by default', async () => {
    const a = new MetricsCollector();
    const b = new MetricsCollector();
    a.recordRestore();
    expect(await a.text()).toContain('bematic_restores_total 1');
    expect(await b.text()).toContain('bematic_restores_total 0');
    expect(await b.text()).toContain('bematic_process_cpu_user_seconds_total');
  });

  it('reports an event-loop stall as its length, once per scrape window', async () => {
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const m = new MetricsCollector({ defaultMetrics: false, eventLoopDelay: loop });
    const max = (text: string) => Number(/event_loop_delay_seconds\{stat="max"\} (\S+)/.exec(text)?.[1]);
    // The sampler measures from its previous firing: the stall must come after its first sample.
    await sampled(() => loop.count > 0);
    const started = performance.now();
    while (performance.now() - started < 80) {
      // a synchronous stall, as a large query on better-sqlite3 would cause
    }
    const stalledNs = (performance.now() - started) * 1e6;
    // The sampler's first firing after the stall records it (less its 10 ms resolution).
    await sampled(() => loop.max >= stalledNs - 20e6);
    expect(max(await m.text())).toBeGreaterThanOrEqual(0.06);
    // That scrape started a new window; its first sample is an ordinary one.
    await sampled(() => loop.count > 0);
    expect(max(await m.text())).toBeLessThan(0.06);
    loop.disable();
  });
});

/** Yields to the event loop (no timer of its own) until the sampler has recorded what `done` looks for. */
async function sampled(done: () => boolean): Promise<void> {
  while (!done()) await new Promise<void>((resolve) => setImmediate(resolve));
}
