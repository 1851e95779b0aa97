import { describe, expect, it } from 'vitest';
import { BatchedLookup } from './batched-lookup.js';

describe('BatchedLookup', () => {
  it('answers the look-ups of one tick with one fetch, each caller its own key', async () => {
    const fetches: string[][] = [];
    const lookup = new BatchedLookup<string>(async (keys) => {
      fetches.push(keys);
      return new Map(keys.filter((k) => k !== 'missing').map((k) => [k, `row ${k}`]));
    });
    const answers = await Promise.all([
      lookup.get('a'),
      lookup.get('b'),
      lookup.get('a'),
      lookup.get('missing'),
    ]);
    expect(answers).toEqual(['row a', 'row b', 'row a', undefined]);
    expect(fetches).toEqual([['a', 'b', 'missing']]);
    expect(await lookup.get('c')).toBe('row c');
    expect(fetches).toHaveLength(2);
  });

  it('splits a large tick into bounded fetches and fails only the callers of a failed one', async () => {
    const sizes: number[] = [];
    const lookup = new BatchedLookup<number>(async (keys) => {
      sizes.push(keys.length);
      if (keys.includes('k1100')) throw new Error('lost connection');
      return new Map(keys.map((k) => [k, Number(k.slice(1))]));
    });
    const keys = Array.from({ length: 1200 }, (_, i) => `k${i}`);
    const settled = await Promise.allSettled(keys.map((k) => lookup.get(k)));
    expect(sizes).toEqual([500, 500, 200]);
    expect(settled[0]).toEqual({ status: 'fulfilled', value: 0 });
    expect(settled[999]).toEqual({ status: 'fulfilled', value: 999 });
    expect(settled[1000]?.status).toBe('rejected');
    expect(settled[1199]?.status).toBe('rejected');
  });
});
