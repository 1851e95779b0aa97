import { once } from 'node:events';
import { ManualClock } from '@bematic/testkit';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cache } from '../cache/cache.js';
import { cacheKeys } from '../cache/cache-keys.js';
import { CacheInvalidation } from '../cache/invalidation.js';
import { CacheBus } from './cache-bus.js';

const url = process.env.BEMATIC_TEST_POSTGRES_URL;

describe.skipIf(!url)('cache invalidations across instances (LISTEN/NOTIFY)', () => {
  const schema = `bematic_cachebus_${Math.random().toString(16).slice(2, 10)}`;
  const other = `${schema}_b`;
  const inSchema = (s: string) =>
    `${url}${url?.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${s}`)}`;
  const admin = new pg.Client({ connectionString: url });
  const buses: CacheBus[] = [];

  const instance = async (instanceId: string, s = schema) => {
    const cache = new Cache({ name: instanceId, ttlMs: 60_000 });
    const clock = new ManualClock();
    const bus = new CacheBus({
      connectionString: inSchema(s),
      instanceId,
      clock,
      logger: pino({ level: 'silent' }),
      reconnectMs: 1000,
    });
    buses.push(bus);
    const invalidation = new CacheInvalidation(cache, (t) => bus.publish(t));
    const flushed: Array<() => void> = [];
    await bus.start({
      drop: (t) => invalidation.dropRemote(t),
      dropAll: () => {
        invalidation.dropAll();
        for (const resolve of flushed.splice(0)) resolve();
      },
    });
    const nextFlush = () => new Promise<void>((resolve) => flushed.push(resolve));
    return { cache, bus, invalidation, clock, nextFlush };
  };

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.query(`create schema ${other}`);
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.query(`drop schema if exists ${other} cascade`);
    await admin.end();
  });

  it('a task change on one instance drops exactly the stale keys on the others, not in another schema', async () => {
    const a = await instance('a');
    const b = await instance('b');
    const elsewhere = await instance('c', other);
    const task = { id: 'T1', projectId: 'P1' };
    for (const { cache } of [a, b, elsewhere]) {
      cache.set(cacheKeys.task('T1'), { id: 'T1' });
      cache.set(cacheKeys.task('T2'), { id: 'T2' });
      cache.set(cacheKeys.projectList(), []);
    }
    const received = once(b.bus, 'received');
    a.invalidation.taskChanged(task);
    await received;
    expect(b.cache.has(cacheKeys.task('T1'))).toBe(false);
    expect(b.cache.has(cacheKeys.task('T2'))).toBe(true);
    expect(b.cache.has(cacheKeys.projectList())).toBe(true);

    // The other schema's service got nothing: a later message of its own proves the bus delivered in order.
    const elsewhereReceived = once(elsewhere.bus, 'received');
    const other2 = await instance('d', other);
    other2.invalidation.projectsChanged();
    await elsewhereReceived;
    expect(elsewhere.cache.has(cacheKeys.task('T1'))).toBe(true);
    expect(elsewhere.cache.has(cacheKeys.projectList())).toBe(false);
  });

  it('sends on a connection of its own: the listening session only ever LISTENs', async () => {
    const j = await instance('j');
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    try {
      await watcher.query('listen bematic_cache');
      const heard = new Promise<number>((resolve) =>
        watcher.on('notification', (n) => {
          if (n.payload?.includes('"from":"j"')) resolve(n.processId);
        }),
      );
      j.invalidation.taskChanged({ id: 'T7', projectId: 'P1' });
      const pid = await heard;
      const { rows } = await admin.query<{ application_name: string }>(
        'select application_name from pg_stat_activity where pid = $1',
        [pid],
      );
      expect(rows[0]?.application_name).toBe('bematic-notify:j');
    } finally {
      await watcher.end();
    }
  });

  it('after losing its session the instance listens again and flushes what it may have missed', async () => {
    const a = await instance('e');
    const b = await instance('f');
    a.cache.set(cacheKeys.task('T9'), { id: 'T9' });
    const lost = once(a.bus, 'lost');
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [
      'bematic-cache:e',
    ]);
    await lost;
    expect(a.cache.has(cacheKeys.task('T9'))).toBe(true);
    const flushed = a.nextFlush();
    await a.clock.advance(1000);
    await flushed;
    expect(a.cache.has(cacheKeys.task('T9'))).toBe(false);

    // Listening again: drops from the others arrive as before.
    a.cache.set(cacheKeys.task('T10'), { id: 'T10' });
    const received = once(a.bus, 'received');
    b.invalidation.taskChanged({ id: 'T10', projectId: 'P1' });
    await received;
    expect(a.cache.has(cacheKeys.task('T10'))).toBe(false);
  });
  it("carries a further channel on the same session: to the schema's other instances, within NOTIFY's size, resumed after a loss", async () => {
    const seen = new Map<string, unknown[]>();
    const waiters: Array<() => void> = [];
    const resumed: string[] = [];
    const member = async (instanceId: string, s = schema) => {
      const clock = new ManualClock();
      const bus = new CacheBus({
        connectionString: inSchema(s),
        instanceId,
        clock,
        logger: pino({ level: 'silent' }),
        reconnectMs: 1000,
      });
      buses.push(bus);
      seen.set(instanceId, []);
      const channel = bus.channel('bematic_test_feed', {
        receive: (body) => {
          seen.get(instanceId)?.push(body);
          for (const resolve of waiters.splice(0)) resolve();
        },
        resumed: () => {
          resumed.push(instanceId);
          for (const resolve of waiters.splice(0)) resolve();
        },
      });
      await bus.start({ drop: () => {}, dropAll: () => {} });
      return { bus, channel, clock };
    };
    const next = () => new Promise<void>((resolve) => waiters.push(resolve));
    const g = await member('g');
    const h = await member('h');
    const elsewhere = await member('i', other);

    let arrived = next();
    g.channel.send({ n: 1 });
    await arrived;
    // Too big for one NOTIFY: dropped at the sender, the next message still goes.
    g.channel.send({ n: 'x'.repeat(9000) });
    arrived = next();
    g.channel.send({ n: 2 });
    await arrived;
    arrived = next();
    h.channel.send({ n: 3 });
    await arrived;
    expect(seen.get('h')).toEqual([{ n: 1 }, { n: 2 }]);
    expect(seen.get('g')).toEqual([{ n: 3 }]);
    expect(seen.get('i')).toEqual([]);
    expect(() => g.bus.channel('bematic_cache', { receive: () => {} })).toThrow(/bad bus channel/);

    const lost = once(g.bus, 'lost');
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [
      'bematic-cache:g',
    ]);
    await lost;
    arrived = next();
    await g.clock.advance(1000);
    await arrived;
    expect(resumed).toEqual(['g']);
    arrived = next();
    h.channel.send({ n: 4 });
    await arrived;
    expect(seen.get('g')).toEqual([{ n: 3 }, { n: 4 }]);
    await elsewhere.bus.close();
  });
});
