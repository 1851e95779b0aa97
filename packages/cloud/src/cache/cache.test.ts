import { describe, expect, it } from 'vitest';
import type { Task } from '../db/repositories/types.js';
import { TaskEvents } from '../tasks/task-events.js';
import { Cache } from './cache.js';
import { cacheKeys } from './cache-keys.js';
import { CacheInvalidation } from './invalidation.js';

function clockedCache(opts: { ttlMs?: number; maxEntries?: number } = {}) {
  const clock = { now: 1000 };
  const lookups: boolean[] = [];
  const cache = new Cache({
    name: 'test',
    ttlMs: opts.ttlMs ?? 100,
    maxEntries: opts.maxEntries ?? 10,
    now: () => clock.now,
    onLookup: (_, hit) => lookups.push(hit),
  });
  return { cache, clock, lookups };
}

describe('Cache', () => {
  it('expires entries after their TTL', () => {
    const { cache, clock } = clockedCache({ ttlMs: 100 });
    cache.set('a', 1);
    cache.set('b', 2, 500);
    clock.now += 99;
    expect(cache.get('a')).toBe(1);
    clock.now += 1;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
  });

  it('evicts the least recently used entry beyond maxEntries', () => {
    const { cache } = clockedCache({ maxEntries: 2 });
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now more recent than b
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.get('c')).toBe(3);
    expect(cache.stats().evictions).toBe(1);
  });

  it('invalidates one key or a whole prefix', () => {
    const { cache } = clockedCache();
    cache.set(cacheKeys.taskList({ projectId: 'p1', limit: 50 }), []);
    cache.set(cacheKeys.taskList({ projectId: 'p1', status: ['running'], limit: 50 }), []);
    cache.set(cacheKeys.taskList({ projectId: 'p2', limit: 50 }), []);
    cache.set(cacheKeys.task('t1'), {});
    expect(cache.invalidate({ prefix: cacheKeys.projectTasks('p1') })).toBe(2);
    expect(cache.keys().sort()).toEqual(
      [cacheKeys.task('t1'), cacheKeys.taskList({ projectId: 'p2', limit: 50 })].sort(),
    );
    expect(cache.invalidate(cacheKeys.task('t1'))).toBe(1);
    cache.flush();
    expect(cache.keys()).toEqual([]);
  });

  it('counts hits and misses and reports the hit ratio', async () => {
    const { cache, lookups } = clockedCache();
    expect(cache.stats().hitRatio).toBe(0);
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache.getOrLoad('k', load)).toBe(1);
    expect(await cache.getOrLoad('k', load)).toBe(1);
    expect(await cache.getOrLoad('k', load)).toBe(1);
    cache.get('other');
    expect(loads).toBe(1);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 2, hitRatio: 0.5 });
    expect(lookups).toEqual([false, true, true, false]);
  });

  it('shares a load between concurrent callers and does not store a load overtaken by invalidation', async () => {
    const { cache } = clockedCache();
    let release: (v: string) => void = () => {};
    let loads = 0;
    const loader = () => {
      loads++;
      return new Promise<string>((r) => {
        release = r;
      });
    };
    const a = cache.getOrLoad('k', loader);
    const b = cache.getOrLoad('k', loader);
    cache.invalidate('k');
    release('stale');
    expect(await a).toBe('stale');
    expect(await b).toBe('stale');
    expect(loads).toBe(1);
    expect(cache.has('k')).toBe(false);
  });

  it('warms best-effort and does not cache with a zero TTL', async () => {
    const { cache } = clockedCache();
    expect(await cache.warm('w', async () => 'v')).toBe(true);
    expect(cache.get('w')).toBe('v');
    expect(
      await cache.warm('x', async () => {
        throw new Error('db down');
      }),
    ).toBe(false);
    expect(cache.has('x')).toBe(false);
    const off = new Cache({ ttlMs: 0 });
    off.set('a', 1);
    expect(off.get('a')).toBeUndefined();
  });
});

describe('CacheInvalidation', () => {
  const task = { id: 't1', projectId: 'p1', agentId: 'a1' } as Task;

  it('follows the lifecycle events on the bus', () => {
    const { cache } = clockedCache({ maxEntries: 100 });
    const events = new TaskEvents();
    const off = new CacheInvalidation(cache).attachToEvents(events);
    const fill = () => {
      cache.set(cacheKeys.task('t1'), 1);
      cache.set(cacheKeys.taskList({ projectId: 'p1', limit: 10 }), 1);
      cache.set(cacheKeys.taskList({ limit: 10 }), 1);
      cache.set(cacheKeys.taskList({ projectId: 'p2', limit: 10 }), 1);
      cache.set(cacheKeys.globalStats(), 1);
      cache.set(cacheKeys.agentPage('[100]'), 1);
    };
    fill();
    events.emit('task.created', { task });
    expect(cache.has(cacheKeys.taskList({ projectId: 'p1', limit: 10 }))).toBe(false);
    expect(cache.has(cacheKeys.taskList({ limit: 10 }))).toBe(false);
    expect(cache.has(cacheKeys.taskList({ projectId: 'p2', limit: 10 }))).toBe(true);
    expect(cache.has(cacheKeys.agentPage('[100]'))).toBe(true);

    fill();
    events.emit('task.cancelled', { task, message: { taskId: 't1', attempt: 1 } });
    expect(cache.has(cacheKeys.task('t1'))).toBe(false);
    expect(cache.has(cacheKeys.globalStats())).toBe(false);

    fill();
    events.emit('agent.offline', { agentId: 'a1', reason: 'gone', reconnectEtaMs: null });
    expect(cache.has(cacheKeys.agentPage('[100]'))).toBe(false);
    expect(cache.has(cacheKeys.task('t1'))).toBe(true);

    off();
    events.emit('task.created', { task });
    expect(cache.has(cacheKeys.taskList({ projectId: 'p1', limit: 10 }))).toBe(true);
  });
});
