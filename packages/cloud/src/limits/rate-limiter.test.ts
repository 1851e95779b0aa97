import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDatabase, type Database } from '../db/database.js';
import { migrateToLatest } from '../db/migrations/index.js';
import { RateLimiter } from './rate-limiter.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('RateLimiter (memory)', () => {
  it('counts hits per key until the window ends, gives one back, and forgets a key on reset', async () => {
    vi.useFakeTimers({ now: 0, toFake: ['Date'] });
    const limiter = new RateLimiter('test', { limit: 2, windowMs: 1000 });
    await limiter.record('a');
    vi.setSystemTime(400);
    expect(await limiter.tryAcquire('a')).toBe(true);
    expect(await limiter.isLimited('a')).toBe(true);
    expect(await limiter.tryAcquire('a')).toBe(false);
    expect(await limiter.isLimited('b')).toBe(false);
    expect(await limiter.status('a')).toEqual({ used: 2, limit: 2, remaining: 0, resetInMs: 600 });
    await limiter.release('a');
    expect(await limiter.status('a')).toEqual({ used: 1, limit: 2, remaining: 1, resetInMs: 600 });
    vi.setSystemTime(1000); // the window that began with the first hit is over
    expect(await limiter.status('a')).toEqual({ used: 0, limit: 2, remaining: 2, resetInMs: 0 });
    await limiter.record('a');
    await limiter.reset('a');
    expect((await limiter.status('a')).used).toBe(0);
  });

  it('keeps keys of differently named limiters apart and counts very long keys', async () => {
    const one = new RateLimiter('one', { limit: 1, windowMs: 60_000 });
    const long = 'x'.repeat(500);
    expect(await one.tryAcquire(long)).toBe(true);
    expect(await one.tryAcquire(long)).toBe(false);
    expect(await one.tryAcquire(`${long}y`)).toBe(true);
  });

  it('takes its defaults from the rate-limit settings', () => {
    const limiter = new RateLimiter('test');
    expect([limiter.limit, limiter.windowMs]).toEqual([20, 3_600_000]);
  });
});

const url = process.env.BEMATIC_TEST_POSTGRES_URL;

describe.skipIf(!url)('RateLimiter (PostgreSQL store)', () => {
  const schema = `bematic_rl_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const databases: Database[] = [];

  /** One "instance": its own pool on the shared database. */
  const instance = async () => {
    const database = await createDatabase(url ?? '', { schema });
    databases.push(database);
    await migrateToLatest(database);
    if (!database.pool) throw new Error('expected a PostgreSQL pool');
    return { database, pool: database.pool };
  };

  beforeAll(async () => {
    await instance();
  });
  afterAll(async () => {
    const [first] = databases;
    if (first) await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(first.db);
    await Promise.all(databases.map((d) => d.close()));
  });

  it("two instances on one database share one user's allowance, also when they race", async () => {
    const a = new RateLimiter(
      'user-tasks',
      { limit: 3, windowMs: 3_600_000 },
      {
        kind: 'postgres',
        pool: (await instance()).pool,
      },
    );
    const b = new RateLimiter(
      'user-tasks',
      { limit: 3, windowMs: 3_600_000 },
      {
        kind: 'postgres',
        pool: (await instance()).pool,
      },
    );
    expect(await a.tryAcquire('U1')).toBe(true);
    expect(await b.tryAcquire('U1')).toBe(true);
    expect(await a.status('U1')).toMatchObject({ used: 2, remaining: 1 });
    // Four requests at once on both instances: exactly one still fits.
    const raced = await Promise.all([a, b, a, b].map((l) => l.tryAcquire('U1')));
    expect(raced.filter(Boolean)).toHaveLength(1);
    expect(await b.status('U1')).toMatchObject({ used: 3, remaining: 0, limit: 3 });
    expect((await b.status('U1')).resetInMs).toBeGreaterThan(3_500_000);
    // Another user is not affected; a give-back on one instance frees a slot on the other.
    expect(await b.tryAcquire('U2')).toBe(true);
    await b.release('U1');
    expect(await a.tryAcquire('U1')).toBe(true);
    expect(await b.tryAcquire('U1')).toBe(false);
  });

  it('the table is ours (migration 010): the limiter runs no DDL', async () => {
    const { database } = await instance();
    const limiter = new RateLimiter(
      'agent-auth-failures',
      { limit: 1, windowMs: 60_000 },
      {
        kind: 'postgres',
        pool: database.pool as NonNullable<Database['pool']>,
      },
    );
    await limiter.record('10.0.0.1|agent-a');
    expect(await limiter.isLimited('10.0.0.1|agent-a')).toBe(true);
    const { rows } = await sql<{
      key: string;
      points: number;
    }>`select key, points from rate_limits order by key`.execute(database.db);
    expect(rows).toContainEqual({ key: 'agent-auth-failures:10.0.0.1|agent-a', points: 1 });
    await limiter.reset('10.0.0.1|agent-a');
    expect(await limiter.isLimited('10.0.0.1|agent-a')).toBe(false);
  });
  it('deletes rows an hour past their window every five minutes, so stale keys do not pile up', async () => {
    const { database } = await instance();
    vi.useFakeTimers({ now: Date.now(), toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const limiter = new RateLimiter(
      'stale-keys',
      { limit: 5, windowMs: 60_000 },
      { kind: 'postgres', pool: database.pool as NonNullable<Database['pool']> },
    );
    await limiter.record('gone');
    vi.setSystemTime(Date.now() + 2 * 3_600_000);
    await limiter.record('recent');
    const keys = async () =>
      (
        await sql<{
          key: string;
        }>`select key from rate_limits where key like 'stale-keys:%' order by key`.execute(database.db)
      ).rows.map((r) => r.key);
    expect(await keys()).toEqual(['stale-keys:gone', 'stale-keys:recent']);
    await vi.advanceTimersByTimeAsync(300_000);
    await vi.waitFor(async () => expect(await keys()).toEqual(['stale-keys:recent']));
  });
});
