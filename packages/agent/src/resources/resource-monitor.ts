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

/** A threshold in percent, or `off`: that resource never makes the agent refuse work. */
export type Threshold = number | 'off';

export type OverloadedResource = 'cpu' | 'memory';

/** Why the agent refuses new work: which resource, how loaded, and for how long already. */
export interface OverloadDetail {
  resource: OverloadedResource;
  /** CPU: the average over the window; memory: the latest reading. Whole percent. */
  percent: number;
  threshold: number;
  sustainedMs: number;
}

export interface ResourceStatusChange {
  overloaded: boolean;
  reason: string | undefined;
  overload: OverloadDetail | undefined;
  metrics: ResourceMetrics;
}

export const DEFAULT_CPU_WINDOW_MS = 30_000;

export interface ResourceMonitorOptions {
  cpuThreshold: Threshold;
  memoryThreshold: Threshold;
  /** CPU counts as overloaded only when its average over this long is above the threshold. */
  cpuWindowMs?: number;
  /** Usage must fall this many points below the threshold to count towards recovery. */
  hysteresisMargin?: number;
  /** Consecutive calm samples needed before the agent declares itself recovered. */
  recoverySamples?: number;
  /** Default: a sixth of the CPU window, between 100 ms and 5 s. */
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

/** For people: "CPU 97% for 30 s (limit 90%)". */
export function describeOverload(o: OverloadDetail): string {
  const what = o.resource === 'cpu' ? 'CPU' : 'memory';
  return `${what} ${o.percent}% for ${Math.round(o.sustainedMs / 1000)} s (limit ${o.threshold}%)`;
}

interface TimedSample {
  at: number;
  /** How long the CPU reading of this sample covers (time since the previous sample). */
  spanMs: number;
  cpuPercent: number;
}

/**
 * Watches CPU and memory and says when the agent should stop taking work. CPU is judged on its
 * average over `cpuWindowMs` (a compile or a test run that spikes for a few seconds does not
 * count; nothing is judged before a whole window has been seen), memory on the latest reading.
 * A resource is over when it is strictly above its threshold, so 100 never trips. Recovered only
 * after `recoverySamples` consecutive samples below threshold − margin, so a load hovering at the
 * line does not flap the agent's status. Emits 'change' on every transition and whenever the
 * overloaded resource changes.
 */
export class ResourceMonitor extends EventEmitter<{ change: [ResourceStatusChange] }> {
  private readonly margin: number;
  private readonly recoverySamples: number;
  private readonly windowMs: number;
  private readonly intervalMs: number;
  private readonly sampler: Sampler;
  private readonly clock: Clock;
  private last: ResourceSample = { cpuPercent: 0, memoryPercent: 0, rssMb: 0, loadAvg1m: 0 };
  private lastAt: number | undefined;
  private history: TimedSample[] = [];
  private overloaded = false;
  private detail: OverloadDetail | undefined;
  private readonly overSince: Record<OverloadedResource, number | undefined> = {
    cpu: undefined,
    memory: undefined,
  };
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
    this.windowMs = options.cpuWindowMs ?? DEFAULT_CPU_WINDOW_MS;
    this.intervalMs = options.intervalMs ?? Math.min(5000, Math.max(100, Math.round(this.windowMs / 6)));
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

  /** Why the agent is overloaded (the resource that went over first), with current figures. */
  overload(): OverloadDetail | undefined {
    if (this.detail === undefined) return undefined;
    const since = this.overSince[this.detail.resource];
    if (since === undefined) return { ...this.detail };
    const base = this.detail.resource === 'cpu' ? this.windowMs : 0;
    return { ...this.detail, sustainedMs: base + this.clock.now() - since };
  }

  reason(): string | undefined {
    const o = this.overload();
    return o === undefined ? undefined : describeOverload(o);
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

  /** CPU averaged over the last window; undefined until a whole window has been sampled. */
  cpuAverage(): number | undefined {
    let covered = 0;
    let weighted = 0;
    for (let i = this.history.length - 1; i >= 0; i--) {
      const s = this.history[i]!;
      covered += s.spanMs;
      weighted += s.cpuPercent * s.spanMs;
      if (covered >= this.windowMs) return weighted / covered;
    }
    return undefined;
  }

  /** Takes one sample and applies the thresholds. Called by the interval; tests call it directly. */
  sample(): void {
    try {
      this.last = this.sampler();
    } catch {
      return; // a failing probe must not take the agent down; keep the previous reading
    }
    const at = this.clock.now();
    if (this.lastAt !== undefined && at > this.lastAt) {
      this.history.push({ at, spanMs: at - this.lastAt, cpuPercent: clampPercent(this.last.cpuPercent) });
      this.prune();
    }
    this.lastAt = at;
    this.evaluate(at);
  }

  private evaluate(at: number): void {
    const { cpuThreshold, memoryThreshold } = this.options;
    const cpu = cpuThreshold === 'off' ? undefined : this.cpuAverage();
    const memory = memoryThreshold === 'off' ? undefined : clampPercent(this.last.memoryPercent);
    const over: OverloadDetail[] = [];
    if (cpu !== undefined && cpuThreshold !== 'off' && cpu > cpuThreshold)
      over.push({ resource: 'cpu', percent: Math.round(cpu), threshold: cpuThreshold, sustainedMs: 0 });
    if (memory !== undefined && memoryThreshold !== 'off' && memory > memoryThreshold)
      over.push({
        resource: 'memory',
        percent: Math.round(memory),
        threshold: memoryThreshold,
        sustainedMs: 0,
      });
    for (const resource of ['cpu', 'memory'] as const) {
      if (!over.some((o) => o.resource === resource)) this.overSince[resource] = undefined;
      else this.overSince[resource] ??= at;
    }

    if (over.length > 0) {
      this.calmStreak = 0;
      // The resource that tripped first stays the reason while it is over, so the status does not churn.
      const first = over.find((o) => o.resource === this.detail?.resource) ?? over[0]!;
      const changed = !this.overloaded || first.resource !== this.detail?.resource;
      this.overloaded = true;
      this.detail = first;
      if (changed) this.emitChange();
      return;
    }
    if (!this.overloaded) return;
    const calm =
      (cpuThreshold === 'off' || cpu === undefined || cpu < cpuThreshold - this.margin) &&
      (memoryThreshold === 'off' || memory === undefined || memory < memoryThreshold - this.margin);
    this.calmStreak = calm ? this.calmStreak + 1 : 0;
    if (this.calmStreak >= this.recoverySamples) {
      this.overloaded = false;
      this.detail = undefined;
      this.calmStreak = 0;
      this.emitChange();
    }
  }

  /** Keeps just enough history to cover one window. */
  private prune(): void {
    let covered = 0;
    for (let i = this.history.length - 1; i >= 0; i--) {
      covered += this.history[i]!.spanMs;
      if (covered >= this.windowMs) {
        if (i > 0) this.history = this.history.slice(i);
        return;
      }
    }
  }

  private emitChange(): void {
    this.emit('change', {
      overloaded: this.overloaded,
      reason: this.reason(),
      overload: this.overload(),
      metrics: this.metrics(),
    });
  }
}
