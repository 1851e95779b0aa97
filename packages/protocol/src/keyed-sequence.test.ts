import { describe, expect, it } from 'vitest';
import { gate } from '../test/gate.js';
import { KeyedSequence } from './keyed-sequence.js';

describe('KeyedSequence', () => {
  it('runs one key in order, one at a time, and other keys meanwhile', async () => {
    const seq = new KeyedSequence();
    const log: string[] = [];
    const first = gate();
    const a1 = seq.run('a', async () => {
      log.push('a1 start');
      await first.opened;
      log.push('a1 end');
      return 1;
    });
    const a2 = seq.run('a', async () => {
      log.push('a2');
      return 2;
    });
    await seq.run('b', async () => void log.push('b'));
    expect(log).toEqual(['a1 start', 'b']);
    first.open();
    expect(await Promise.all([a1, a2])).toEqual([1, 2]);
    expect(log).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
  });

  it('starts the next run after a failure, which reaches only its own caller', async () => {
    const seq = new KeyedSequence();
    const failed = seq.run('a', async () => {
      throw new Error('boom');
    });
    const next = seq.run('a', async () => 'next');
    await expect(failed).rejects.toThrow('boom');
    expect(await next).toBe('next');
  });

  it('settles when everything asked for so far has', async () => {
    const seq = new KeyedSequence();
    const held = gate();
    let done = false;
    void seq.run('a', async () => {
      await held.opened;
      done = true;
    });
    const settled = seq.settled().then(() => done);
    held.open();
    expect(await settled).toBe(true);
    await expect(seq.settled()).resolves.toBeUndefined();
  });
});
