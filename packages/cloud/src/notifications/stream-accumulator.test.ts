import { ManualClock } from '@bematic/testkit';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../chat/chat-surface.js';
import { StreamAccumulator } from './stream-accumulator.js';

const START = 1_000_000;
let clock: ManualClock;

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
      // Each update takes 200 ms of the test's clock to land.
      await new Promise<void>((r) => clock.setTimeout(r, 200));
      inFlight--;
      const err = opts.fail?.(calls);
      if (err) throw err;
      sent.push({ at: clock.now(), text: m.text });
    },
    refreshMs: opts.refreshMs ?? 0,
    clock,
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
    clock = new ManualClock(START);
  });

  it('sends at most one update per 3 s, with the latest state', async () => {
    const s = setup();
    for (let i = 0; i < 100; i++) {
      s.set(`step ${i}`);
      await clock.advance(100);
    }
    await clock.advance(5000);
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
    await clock.advance(10_000);
    expect(s.sent.map((x) => x.text)).toEqual(['a']);
    s.set('a');
    await clock.advance(60_000);
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
      clock,
    });
    tick = 1;
    await clock.advance(14_000);
    expect(sent).toEqual([]);
    await clock.advance(1_001);
    expect(sent).toEqual(['elapsed 1']);
    acc.dispose();
  });

  it('retries after a 429 using Retry-After, never overlapping', async () => {
    const s = setup({
      fail: (n) => (n === 1 ? Object.assign(new Error('ratelimited'), { retryAfter: 10 }) : undefined),
    });
    s.set('a');
    await clock.advance(5_000);
    expect(s.sent).toEqual([]);
    s.set('b');
    await clock.advance(4_000);
    expect(s.sent).toEqual([]);
    await clock.advance(3_000);
    expect(s.sent.map((x) => x.text)).toEqual(['b']);
    expect(s.sent[0]!.at - START).toBeGreaterThanOrEqual(10_000);
    expect(s.maxInFlight).toBe(1);
  });

  it('the final update lands after failures and waits for an update in flight', async () => {
    const s = setup({
      fail: (n) => (n >= 2 && n <= 4 ? Object.assign(new Error('429'), { retryAfterMs: 2000 }) : undefined),
    });
    s.set('running');
    await clock.advance(50);
    const done = s.acc.finish({ text: 'final' });
    s.set('ignored after finish');
    await clock.advance(60_000);
    await expect(done).resolves.toBe(true);
    expect(s.sent.map((x) => x.text)).toEqual(['running', 'final']);
    expect(s.maxInFlight).toBe(1);
  });
});
