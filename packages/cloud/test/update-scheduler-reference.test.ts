import type { Clock } from '@bematic/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ScheduledMessage, UpdateScheduler } from '../src/notifications/update-scheduler.js';
import { ReferenceScheduler } from './support/reference-update-scheduler.js';

const fakeTimers: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
interface S {
  want(m: ScheduledMessage): void;
  forget(m: ScheduledMessage): void;
  stop(): void;
}
async function run(make: () => S, seed: number): Promise<string[]> {
  const r = rng(seed);
  const s = make();
  const log: string[] = [];
  const n = 2 + Math.floor(r() * 30);
  const msgs: Array<ScheduledMessage & { pending: boolean; isFinal: boolean }> = [];
  for (let i = 0; i < n; i++) {
    const callMs = 1 + Math.floor(r() * 700) + 0.5;
    const fail = r() < 0.1;
    const m = {
      channelId: `C${Math.floor(r() * 4)}`,
      isFinal: false,
      get final() {
        return this.isFinal;
      },
      key: r() < 0.5 ? `K${Math.floor(r() * 5)}` : undefined,
      changedAt: r() < 0.2 ? Math.floor(r() * 100) : undefined,
      pending: false,
      send() {
        if (!this.pending) return null;
        this.pending = false;
        log.push(`${i} ${Date.now()}`);
        return new Promise<void>((res, rej) =>
          setTimeout(
            () => (fail && r() < 0.5 ? rej(Object.assign(new Error('x'), { retryAfter: 2 })) : res()),
            callMs,
          ),
        );
      },
      failed() {
        this.pending = true;
        s.want(this);
      },
    };
    msgs.push(m);
  }
  for (let step = 0; step < 200; step++) {
    const m = msgs[Math.floor(r() * n)]!;
    const x = r();
    if (x < 0.05) {
      m.isFinal = true;
      m.pending = true;
      s.want(m);
    } else if (x < 0.08) s.forget(m);
    else {
      m.pending = true;
      s.want(m);
    }
    await vi.advanceTimersByTimeAsync(Math.floor(r() * 400) + 0.25);
  }
  await vi.advanceTimersByTimeAsync(60_000);
  s.stop();
  return log;
}
describe('UpdateScheduler against the scanning reference (random workloads, same starts at the same times)', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());
  for (let seed = 1; seed <= 150; seed++)
    it(`seed ${seed}`, async () => {
      const r = rng(seed * 7);
      const budget = {
        perMinute: [0, 50, 200][Math.floor(r() * 3)]!,
        channelIntervalMs: [0, 1000, 333][Math.floor(r() * 3)]!,
        taskIntervalMs: [0, 3000, 700][Math.floor(r() * 3)]!,
      };
      const a = await run(() => new ReferenceScheduler(budget, fakeTimers), seed);
      vi.useRealTimers();
      vi.useFakeTimers({ now: 0 });
      const b = await run(() => new UpdateScheduler(budget, fakeTimers), seed);
      expect(b).toEqual(a);
      expect(a.length).toBeGreaterThan(5);
    });
});
