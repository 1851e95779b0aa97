import { ResourceMetrics } from '@bematic/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createOsSampler,
  ResourceMonitor,
  type ResourceSample,
  type ResourceStatusChange,
} from './resource-monitor.js';

function scripted(samples: Partial<ResourceSample>[]) {
  let i = 0;
  return () => ({
    cpuPercent: 0,
    memoryPercent: 0,
    rssMb: 10,
    loadAvg1m: 0,
    ...samples[Math.min(i++, samples.length - 1)],
  });
}

describe('ResourceMonitor', () => {
  afterEach(() => vi.useRealTimers());

  it('goes overloaded above a threshold and recovers only after N calm samples below threshold − margin', () => {
    const monitor = new ResourceMonitor({
      cpuThreshold: 90,
      memoryThreshold: 90,
      hysteresisMargin: 10,
      recoverySamples: 2,
      sampler: scripted([
        { cpuPercent: 50 },
        { cpuPercent: 95 },
        { cpuPercent: 85 }, // below threshold but inside the margin: still overloaded
        { cpuPercent: 70 },
        { cpuPercent: 85 }, // breaks the calm streak
        { cpuPercent: 70 },
        { cpuPercent: 60 },
      ]),
    });
    const changes: ResourceStatusChange[] = [];
    monitor.on('change', (c) => changes.push(c));
    const states: boolean[] = [];
    for (let i = 0; i < 7; i++) {
      monitor.sample();
      states.push(monitor.isOverloaded());
    }
    expect(states).toEqual([false, true, true, true, true, true, false]);
    expect(changes.map((c) => c.overloaded)).toEqual([true, false]);
    expect(changes[0]?.reason).toMatch(/CPU 95% ≥ 90%/);
    expect(changes[1]?.reason).toBeUndefined();
  });

  it('reports memory overload and includes task counts in the metrics', () => {
    const monitor = new ResourceMonitor({
      cpuThreshold: 90,
      memoryThreshold: 80,
      sampler: scripted([{ memoryPercent: 81, rssMb: 123 }]),
    });
    monitor.setTaskCounts(() => ({ activeTasks: 2, queuedTasks: 5 }));
    monitor.sample();
    expect(monitor.reason()).toMatch(/memory 81% ≥ 80%/);
    expect(monitor.metrics()).toMatchObject({
      memoryPercent: 81,
      rssMb: 123,
      activeTasks: 2,
      queuedTasks: 5,
    });
  });

  it('samples on its interval with injected timers', () => {
    vi.useFakeTimers();
    const sampler = vi.fn(scripted([{ cpuPercent: 10 }]));
    const monitor = new ResourceMonitor({ cpuThreshold: 90, memoryThreshold: 90, intervalMs: 1000, sampler });
    monitor.start();
    expect(sampler).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(3000);
    expect(sampler).toHaveBeenCalledTimes(4);
    monitor.stop();
    vi.advanceTimersByTime(3000);
    expect(sampler).toHaveBeenCalledTimes(4);
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
