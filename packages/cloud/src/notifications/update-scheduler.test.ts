import type { Clock } from '@bematic/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ScheduledMessage, UpdateScheduler } from './update-scheduler.js';

/** Looks the (faked) globals up at call time. */
const fakeTimers: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

/** A task's view of one chat message: each call takes `callMs` and records when it started and ended. */
function message(
  name: string,
  log: string[],
  opts: { key?: string; final?: boolean; callMs?: number; channelId?: string } = {},
): ScheduledMessage & { pending: boolean } {
  return {
    channelId: opts.channelId ?? 'C1',
    final: opts.final ?? false,
    key: opts.key,
    pending: false,
    send() {
      if (!this.pending) return null;
      this.pending = false;
      log.push(`${name} start ${Date.now()}`);
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          log.push(`${name} end ${Date.now()}`);
          resolve();
        }, opts.callMs ?? 500),
      );
    },
    failed() {},
  };
}

describe('UpdateScheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("never overlaps two tasks' updates of one chat message, so an older state cannot land after a newer one", async () => {
    const scheduler = new UpdateScheduler(
      { perMinute: 0, channelIntervalMs: 0, taskIntervalMs: 0 },
      fakeTimers,
    );
    const log: string[] = [];
    // A plan's step that just ended (its final) and the next step, drawing into the same plan message.
    const ended = message('ended', log, { key: 'C1:1.0', final: true });
    const next = message('next', log, { key: 'C1:1.0' });
    const other = message('other', log, { key: 'C1:2.0' });
    ended.pending = true;
    scheduler.want(ended);
    next.pending = true;
    scheduler.want(next);
    other.pending = true;
    scheduler.want(other);
    await vi.advanceTimersByTimeAsync(2000);
    await scheduler.idle();
    // The other message is not held up; the next step's update waits for the final one to land.
    expect(log).toEqual([
      'ended start 0',
      'other start 0',
      'ended end 500',
      'next start 500',
      'other end 500',
      'next end 1000',
    ]);
  });

  it('keeps the task interval between updates of one message, whichever task sends them', async () => {
    const scheduler = new UpdateScheduler(
      { perMinute: 0, channelIntervalMs: 0, taskIntervalMs: 3000 },
      fakeTimers,
    );
    const log: string[] = [];
    const first = message('first', log, { key: 'C1:1.0', callMs: 100 });
    first.pending = true;
    scheduler.want(first);
    await vi.advanceTimersByTimeAsync(1000);
    // A redraw of the same message, seen for the first time: it still waits for the message's interval.
    const redraw = message('redraw', log, { key: 'C1:1.0', final: true, callMs: 100 });
    redraw.pending = true;
    scheduler.want(redraw);
    await vi.advanceTimersByTimeAsync(1500);
    expect(log).toEqual(['first start 0', 'first end 100']);
    await vi.advanceTimersByTimeAsync(1000);
    await scheduler.idle();
    expect(log).toEqual(['first start 0', 'first end 100', 'redraw start 3000', 'redraw end 3100']);
    scheduler.stop();
  });

  it('without a key, messages are independent (a message posted but not yet known)', async () => {
    const scheduler = new UpdateScheduler(
      { perMinute: 0, channelIntervalMs: 0, taskIntervalMs: 0 },
      fakeTimers,
    );
    const log: string[] = [];
    const a = message('a', log);
    const b = message('b', log);
    a.pending = true;
    b.pending = true;
    scheduler.want(a);
    scheduler.want(b);
    await vi.advanceTimersByTimeAsync(1000);
    expect(log).toEqual(['a start 0', 'b start 0', 'a end 500', 'b end 500']);
  });
});

/** A message that always has more to show: each update, once it lands, asks for the next one. */
function busy(
  name: string,
  log: string[],
  scheduler: UpdateScheduler,
  opts: { channelId: string; final?: boolean },
): ScheduledMessage {
  const self: ScheduledMessage = {
    channelId: opts.channelId,
    final: opts.final ?? false,
    send() {
      log.push(`${name} ${Date.now()}`);
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          if (!self.final) scheduler.want(self);
          resolve();
        }, 10),
      );
    },
    failed() {},
  };
  return self;
}

describe('UpdateScheduler order', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives each free slot of the budget to a waiting final first, then to the least recently served', async () => {
    const scheduler = new UpdateScheduler(
      { perMinute: 60, channelIntervalMs: 0, taskIntervalMs: 0 },
      fakeTimers,
    );
    const log: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((n, i) => busy(n, log, scheduler, { channelId: `C${i}` }));
    for (const m of [a, b, c]) if (m) scheduler.want(m);
    await vi.advanceTimersByTimeAsync(2500);
    // A task ends while every progress update waits for the budget: its final takes the next slot.
    scheduler.want(busy('final', log, scheduler, { channelId: 'C1', final: true }));
    await vi.advanceTimersByTimeAsync(3000);
    scheduler.stop();
    expect(log).toEqual(['a 0', 'b 1000', 'c 2000', 'final 3000', 'a 4000', 'b 5000']);
  });

  it("keeps one channel to its interval while another channel's updates go ahead", async () => {
    const scheduler = new UpdateScheduler(
      { perMinute: 0, channelIntervalMs: 1000, taskIntervalMs: 0 },
      fakeTimers,
    );
    const log: string[] = [];
    const x = busy('x', log, scheduler, { channelId: 'C1' });
    const y = busy('y', log, scheduler, { channelId: 'C1' });
    const z = busy('z', log, scheduler, { channelId: 'C2' });
    for (const m of [x, y, z]) scheduler.want(m);
    await vi.advanceTimersByTimeAsync(2500);
    scheduler.stop();
    // One channel's messages take turns, one a second; the other channel is not held up by them.
    expect(log).toEqual(['x 0', 'z 0', 'y 1000', 'z 1000', 'x 2000', 'z 2000']);
  });
});
