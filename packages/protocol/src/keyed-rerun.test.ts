import { describe, expect, it } from 'vitest';
import { gate } from '../test/gate.js';
import { KeyedRerun } from './keyed-rerun.js';

describe('KeyedRerun', () => {
  it('folds the requests made during a pass into one more pass, per key', async () => {
    const rerun = new KeyedRerun();
    const passes: string[] = [];
    let first = gate();
    const pass = (key: string) => async () => {
      passes.push(key);
      const g = first;
      first = { open: () => {}, opened: Promise.resolve() };
      await g.opened;
    };
    const held = first;
    const a1 = rerun.run('a', pass('a'));
    await Promise.resolve();
    await Promise.resolve();
    const a2 = rerun.run('a', pass('a'));
    const a3 = rerun.run('a', pass('a'));
    const b = rerun.run('b', pass('b'));
    expect(a2).toBe(a1);
    expect(a3).toBe(a1);
    await b;
    expect(passes).toEqual(['a', 'b']);
    held.open();
    await a1;
    expect(passes).toEqual(['a', 'b', 'a']);
  });

  it('runs a request made after the last pass ended as a run of its own', async () => {
    const rerun = new KeyedRerun();
    let passes = 0;
    await rerun.run('a', async () => void passes++);
    await rerun.run('a', async () => void passes++);
    expect(passes).toBe(2);
  });

  it('drops the further pass when repeat says no, and a failing pass rejects its callers', async () => {
    const rerun = new KeyedRerun();
    const g = gate();
    let passes = 0;
    const first = rerun.run(
      'a',
      async () => {
        passes++;
        await g.opened;
      },
      () => false,
    );
    await Promise.resolve();
    void rerun.run('a', async () => {});
    g.open();
    await first;
    expect(passes).toBe(1);

    const failing = rerun.run('a', async () => {
      throw new Error('boom');
    });
    await expect(failing).rejects.toThrow('boom');
    await expect(rerun.run('a', async () => {})).resolves.toBeUndefined();
    await rerun.settled();
  });
});
