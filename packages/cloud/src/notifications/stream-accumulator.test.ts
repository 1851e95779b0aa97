import type { Clock } from '@bematic/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChatMessage } from '../chat/chat-surface.js';
import { StreamAccumulator } from './stream-accumulator.js';

/** Looks the (faked) globals up at call time. */
const fakeTimers: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

function setup(opts: { fail?: (n: number) => unknown; refreshMs?: number } = {}) {
  let state = 'start';
  const sent: { at: number; text: string }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let calls = 0;
  const acc = new StreamAccumulator({
    render: (): ChatMessage => ({ text: state }),
    send: async (m) => {
      calls++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 200));
      inFlight--;
      const err = opts.fail?.(calls);
      if (err) throw err;
      sent.push({ at: Date.now(), text: m.text });
    },
    refreshMs: opts.refreshMs ?? 0,
    clock: fakeTimers,
  });
  return {
    acc,
    sent,
    set(s: string) {
      state = s;
      acc.changed();
    },
    get calls() {
      return calls;
    },
    get maxInFlight() {
      return maxInFlight;
    },
  };
}

describe('StreamAccumulator', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends at most one update per 3 s, with the latest state', async () => {
    const s = setup();
    for (let i = 0; i < 100; i++) {
      s.set(`step ${i}`);
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(5000);
    expect(s.sent.length).toBeGreaterThan(1);
    expect(s.sent.length).toBeLessThanOrEqual(Math.ceil(15_000 / 3000) + 1);
    for (let i = 1; i < s.sent.length; i++) {
      expect(s.sent[i]!.at - s.sent[i - 1]!.at).toBeGreaterThanOrEqual(3000);
    }
    expect(s.sent.at(-1)?.text).toBe('step 99');
    expect(s.maxInFlight).toBe(1);
  });

  it('sends nothing when nothing changed', async () => {
    const s = setup();
    s.set('a');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.sent.map((x) => x.text)).toEqual(['a']);
    s.set('a');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(s.calls).toBe(1);
  });

  it('refreshes while idle only at the refresh interval', async () => {
    let tick = 0;
    const sent: string[] = [];
    const acc = new StreamAccumulator({
      render: () => ({ text: `elapsed ${tick}` }),
      send: async (m) => {
        sent.push(m.text);
      },
      refreshMs: 15_000,
      clock: fakeTimers,
    });
    tick = 1;
    await vi.advanceTimersByTimeAsync(14_000);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_001);
    expect(sent).toEqual(['elapsed 1']);
    acc.dispose();
  });

  it('retries after a 429 using Retry-After, never overlapping', async () => {
    const s = setup({
      fail: (n) => (n === 1 ? Object.assign(new Error('ratelimited'), { retryAfter: 10 }) : undefined),
    });
    s.set('a');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.sent).toEqual([]);
    s.set('b');
    await vi.advanceTimersByTimeAsync(4_000);
    expect(s.sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(s.sent.map((x) => x.text)).toEqual(['b']);
    expect(s.sent[0]!.at - 1_000_000).toBeGreaterThanOrEqual(10_000);
    expect(s.maxInFlight).toBe(1);
  });

  it('the final update lands after failures and waits for an update in flight', async () => {
    const s = setup({
      fail: (n) => (n >= 2 && n <= 4 ? Object.assign(new Error('429'), { retryAfterMs: 2000 }) : undefined),
    });
    s.set('running');
    await vi.advanceTimersByTimeAsync(50);
    const done = s.acc.finish({ text: 'final' });
    s.set('ignored after finish');
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(done).resolves.toBe(true);
    expect(s.sent.map((x) => x.text)).toEqual(['running', 'final']);
    expect(s.maxInFlight).toBe(1);
  });
});
