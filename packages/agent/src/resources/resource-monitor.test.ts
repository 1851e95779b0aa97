import { ResourceMetrics } from '@bematic/protocol';
import { ManualClock } from '@bematic/testkit';
import { describe, expect, it } from 'vitest';
import {
  createOsSampler,
  ResourceMonitor,
  type ResourceMonitorOptions,
  type ResourceSample,
  type ResourceStatusChange,
} from './resource-monitor.js';

/** A monitor on a ManualClock; `step(sample)` moves time one 5 s interval on, which takes a sample. */
function stepped(opts: Partial<ResourceMonitorOptions> = {}) {
  const clock = new ManualClock();
  let next: Partial<ResourceSample> = {};
  const monitor = new ResourceMonitor({
    cpuThreshold: 90,
    memoryThreshold: 90,
    cpuWindowMs: 30_000,
    intervalMs: 5_000,
    clock,
    sampler: () => ({ cpuPercent: 0, memoryPercent: 0, rssMb: 10, loadAvg1m: 0, ...next }),
    ...opts,
  });
  const changes: ResourceStatusChange[] = [];
  monitor.on('change', (c) => changes.push(c));
  monitor.start(); // the first reading is a baseline and covers no time
  const step = async (sample: Partial<ResourceSample>, times = 1) => {
    next = sample;
    const states: boolean[] = [];
    for (let i = 0; i < times; i++) {
      await clock.advance(5_000);
      states.push(monitor.isOverloaded());
    }
    return states;
  };
  return { monitor, clock, changes, step };
}

describe('ResourceMonitor', () => {
  it('judges CPU on its average over the whole window, never on one sample, and strictly above the threshold', async () => {
    const { monitor, changes, step } = stepped();
    // A compile pinning the CPU for 25 s of a 30 s window: not judged before a whole window is seen.
    expect(await step({ cpuPercent: 100 }, 5)).toEqual([false, false, false, false, false]);
    expect(monitor.cpuAverage()).toBeUndefined();
    // Average (5·100 + 40) / 6 = 90: at the threshold, not above it.
    expect(await step({ cpuPercent: 40 })).toEqual([false]);
    expect(monitor.cpuAverage()).toBe(90);
    expect(changes).toEqual([]);
  });

  it('says which resource is over, how far and for how long, and updates the figures as time goes on', async () => {
    const { monitor, changes, step } = stepped();
    expect(await step({ cpuPercent: 97 }, 6)).toEqual([false, false, false, false, false, true]);
    expect(monitor.overload()).toEqual({ resource: 'cpu', percent: 97, threshold: 90, sustainedMs: 30_000 });
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      overloaded: true,
      reason: 'CPU 97% for 30 s (limit 90%)',
      overload: { resource: 'cpu', percent: 97, sustainedMs: 30_000 },
    });
    await step({ cpuPercent: 97 }, 2);
    expect(monitor.reason()).toBe('CPU 97% for 40 s (limit 90%)');
    expect(changes).toHaveLength(1); // same resource: no new event
  });

  it('recovers only after N calm samples below threshold − margin', async () => {
    const { monitor, changes, step } = stepped({ recoverySamples: 3, hysteresisMargin: 10 });
    await step({ cpuPercent: 95 }, 6);
    expect(monitor.isOverloaded()).toBe(true);
    // Averages as the idle samples replace busy ones: 79.2, 63.3, 47.5 — all below 90 − 10.
    expect(await step({ cpuPercent: 0 }, 3)).toEqual([true, true, false]);
    expect(changes.map((c) => c.overloaded)).toEqual([true, false]);
    expect(changes[1]?.reason).toBeUndefined();
    expect(monitor.overload()).toBeUndefined();
  });

  it('with a one-sample window: hovering inside the margin stays overloaded, a warm sample breaks the calm streak', async () => {
    const { monitor, changes, step } = stepped({
      cpuWindowMs: 5_000,
      hysteresisMargin: 10,
      recoverySamples: 2,
    });
    const states: boolean[] = [];
    for (const cpuPercent of [50, 95, 85, 70, 85, 70, 60]) states.push(...(await step({ cpuPercent })));
    expect(states).toEqual([false, true, true, true, true, true, false]);
    expect(changes.map((c) => c.overloaded)).toEqual([true, false]);
    expect(monitor.isOverloaded()).toBe(false);
  });

  it('reports memory overload from the latest reading and includes task counts in the metrics', async () => {
    const { monitor, step } = stepped({ memoryThreshold: 80 });
    monitor.setTaskCounts(() => ({ activeTasks: 2, queuedTasks: 5 }));
    expect(await step({ memoryPercent: 81, rssMb: 123 })).toEqual([true]);
    expect(monitor.overload()).toEqual({ resource: 'memory', percent: 81, threshold: 80, sustainedMs: 0 });
    await step({ memoryPercent: 81, rssMb: 123 });
    expect(monitor.reason()).toBe('memory 81% for 5 s (limit 80%)');
    expect(monitor.metrics()).toMatchObject({
      memoryPercent: 81,
      rssMb: 123,
      activeTasks: 2,
      queuedTasks: 5,
    });
  });

  it('a threshold set to off never trips, and 100 cannot trip either', async () => {
    const off = stepped({ cpuThreshold: 'off', memoryThreshold: 'off' });
    expect(await off.step({ cpuPercent: 100, memoryPercent: 100 }, 8)).not.toContain(true);
    const hundred = stepped({ cpuThreshold: 100, memoryThreshold: 100 });
    expect(await hundred.step({ cpuPercent: 100, memoryPercent: 100 }, 8)).not.toContain(true);
    expect(off.changes.concat(hundred.changes)).toEqual([]);
    // The check itself works with the same samples.
    const on = stepped({ cpuThreshold: 99, memoryThreshold: 'off' });
    expect(await on.step({ cpuPercent: 100, memoryPercent: 100 }, 6)).toContain(true);
  });

  it('keeps the resource that tripped first as the reason, and moves to memory when CPU calms down', async () => {
    const { monitor, changes, step } = stepped({ memoryThreshold: 80 });
    await step({ cpuPercent: 99, memoryPercent: 50 }, 6);
    expect(monitor.overload()?.resource).toBe('cpu');
    await step({ cpuPercent: 99, memoryPercent: 85 });
    expect(monitor.overload()?.resource).toBe('cpu');
    await step({ cpuPercent: 0, memoryPercent: 85 }); // CPU average 82.5: no longer above 90
    expect(monitor.overload()).toMatchObject({ resource: 'memory', percent: 85, sustainedMs: 5_000 });
    expect(changes.map((c) => c.overload?.resource)).toEqual(['cpu', 'memory']);
  });

  it('samples on its interval through the injected clock, a sixth of the window by default', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const monitor = new ResourceMonitor({
      cpuThreshold: 90,
      memoryThreshold: 90,
      cpuWindowMs: 6_000,
      clock,
      sampler: () => {
        calls++;
        return { cpuPercent: 10, memoryPercent: 10, rssMb: 1, loadAvg1m: 0 };
      },
    });
    monitor.start();
    expect(calls).toBe(1);
    await clock.advance(3_000);
    expect(calls).toBe(4);
    monitor.stop();
    await clock.advance(3_000);
    expect(calls).toBe(4);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps the previous reading when the sampler throws', () => {
    let fail = false;
    const monitor = new ResourceMonitor({
      cpuThreshold: 90,
      memoryThreshold: 90,
      sampler: () => {
        if (fail) throw new Error('probe failed');
        return { cpuPercent: 42, memoryPercent: 1, rssMb: 1, loadAvg1m: 0 };
      },
    });
    monitor.sample();
    fail = true;
    monitor.sample();
    expect(monitor.metrics().cpuPercent).toBe(42);
  });

  it('the OS sampler yields metrics that satisfy the wire schema', () => {
    const sample = createOsSampler();
    sample();
    const monitor = new ResourceMonitor({ cpuThreshold: 90, memoryThreshold: 90, sampler: sample });
    monitor.sample();
    expect(ResourceMetrics.safeParse(monitor.metrics()).success).toBe(true);
    expect(monitor.metrics().rssMb).toBeGreaterThan(0);
  });
});
