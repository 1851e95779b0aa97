import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { ResourceMetrics } from '@bematic/protocol';
import { type Clock, systemClock, type TimerHandle } from '@bematic/protocol';

export interface ResourceSample {
  cpuPercent: number;
  memoryPercent: number;
  rssMb: number;
  loadAvg1m: number;
}

export type Sampler = () => ResourceSample;

export interface ResourceStatusChange {
  overloaded: boolean;
  reason: string | undefined;
  metrics: ResourceMetrics;
}

export interface ResourceMonitorOptions {
  cpuThreshold: number;
  memoryThreshold: number;
  /** Usage must fall this many points below the threshold to count towards recovery. */
  hysteresisMargin?: number;
  /** Consecutive calm samples needed before the agent declares itself recovered. */
  recoverySamples?: number;
  intervalMs?: number;
  sampler?: Sampler;
  clock?: Clock;
}

const clampPercent = (n: number): number => Math.min(100, Math.max(0, Number.isFinite(n) ? n : 0));

/** Samples CPU from os.cpus() time deltas between calls, and memory from the OS and this process. */
export function createOsSampler(): Sampler {
  const totals = () =>
    os.cpus().reduce(
      (acc, cpu) => {
        const t = cpu.times;
        acc.idle += t.idle;
        acc.total += t.user + t.nice + t.sys + t.irq + t.idle;
        return acc;
      },
      { idle: 0, total: 0 },
    );
  let prev = totals();
  return () => {
    const cur = totals();
    const total = cur.total - prev.total;
    const idle = cur.idle - prev.idle;
    prev = cur;
    const total_mem = os.totalmem();
    return {
      cpuPercent: clampPercent(total > 0 ? ((total - idle) / total) * 100 : 0),
      memoryPercent: clampPercent(total_mem > 0 ? ((total_mem - os.freemem()) / total_mem) * 100 : 0),
      rssMb: process.memoryUsage.rss() / (1024 * 1024),
      loadAvg1m: os.loadavg()[0] ?? 0,
    };
  };
}

/**
 * Watches CPU and memory and says when the agent should stop taking work.
 * Overloaded as soon as a sample crosses a threshold; recovered only after
 * `recoverySamples` consecutive samples below threshold − margin, so a load
 * hovering at the line does not flap the agent's status.
 * Emits 'change' (ResourceStatusChange) on every transition.
 */
export class ResourceMonitor extends EventEmitter<{ change: [ResourceStatusChange] }> {
  private readonly margin: number;
  private readonly recoverySamples: number;
  private readonly intervalMs: number;
  private readonly sampler: Sampler;
  private readonly clock: Clock;
  private last: ResourceSample = { cpuPercent: 0, memoryPercent: 0, rssMb: 0, loadAvg1m: 0 };
  private overloaded = false;
  private overloadReason: string | undefined;
  private calmStreak = 0;
  private timer: TimerHandle | undefined;
  private counts: () => { activeTasks: number; queuedTasks: number } = () => ({
    activeTasks: 0,
    queuedTasks: 0,
  });

  constructor(private readonly options: ResourceMonitorOptions) {
    super();
    this.margin = options.hysteresisMargin ?? 10;
    this.recoverySamples = options.recoverySamples ?? 3;
    this.intervalMs = options.intervalMs ?? 5000;
    this.sampler = options.sampler ?? createOsSampler();
    this.clock = options.clock ?? systemClock;
  }

  /** Where activeTasks/queuedTasks in the metrics come from. */
  setTaskCounts(counts: () => { activeTasks: number; queuedTasks: number }): void {
    this.counts = counts;
  }

  start(): void {
    if (this.timer !== undefined) return;
    const tick = () => {
      this.sample();
      this.timer = this.clock.setTimeout(tick, this.intervalMs);
      (this.timer as { unref?: () => void }).unref?.();
    };
    tick();
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  isOverloaded(): boolean {
    return this.overloaded;
  }

  reason(): string | undefined {
    return this.overloadReason;
  }

  metrics(): ResourceMetrics {
    const { activeTasks, queuedTasks } = this.counts();
    return {
      cpuPercent: clampPercent(this.last.cpuPercent),
      memoryPercent: clampPercent(this.last.memoryPercent),
      rssMb: Math.max(0, this.last.rssMb),
      loadAvg1m: Math.max(0, this.last.loadAvg1m),
      activeTasks,
      queuedTasks,
    };
  }

  /** Takes one sample and applies the thresholds. Called by the interval; tests call it directly. */
  sample(): void {
    try {
      this.last = this.sampler();
    } catch {
      return; // a failing probe must not take the agent down; keep the previous reading
    }
    const { cpuThreshold, memoryThreshold } = this.options;
    const over: string[] = [];
    if (this.last.cpuPercent >= cpuThreshold)
      over.push(`CPU ${this.last.cpuPercent.toFixed(0)}% ≥ ${cpuThreshold}%`);
    if (this.last.memoryPercent >= memoryThreshold)
      over.push(`memory ${this.last.memoryPercent.toFixed(0)}% ≥ ${memoryThreshold}%`);

    if (over.length > 0) {
      this.calmStreak = 0;
      const reason = over.join(', ');
      const changed = !this.overloaded || reason !== this.overloadReason;
      this.overloaded = true;
      this.overloadReason = reason;
      if (changed) this.emitChange();
      return;
    }
    if (!this.overloaded) return;
    const calm =
      this.last.cpuPercent < cpuThreshold - this.margin &&
      this.last.memoryPercent < memoryThreshold - this.margin;
    this.calmStreak = calm ? this.calmStreak + 1 : 0;
    if (this.calmStreak >= this.recoverySamples) {
      this.overloaded = false;
      this.overloadReason = undefined;
      this.calmStreak = 0;
      this.emitChange();
    }
  }

  private emitChange(): void {
    this.emit('change', {
      overloaded: this.overloaded,
      reason: this.overloadReason,
      metrics: this.metrics(),
    });
  }
}
