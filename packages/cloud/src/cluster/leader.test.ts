import { ManualClock } from '@bematic/testkit';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InstanceIdInUseError, type LeaderGate, PostgresLeaderElection, whenLeader } from './leader.js';

describe('whenLeader', () => {
  it('runs the job exactly while the gate says so, and stops it on detach', () => {
    const listeners = new Set<(leader: boolean) => void>();
    const gate = {
      isLeader: false,
      onChange: (l: (leader: boolean) => void) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
    } satisfies LeaderGate;
    const calls: string[] = [];
    const detach = whenLeader(gate, {
      start: () => calls.push('start'),
      stop: () => void calls.push('stop'),
    });
    expect(calls).toEqual([]);
    for (const l of listeners) l(true);
    for (const l of listeners) l(true);
    for (const l of listeners) l(false);
    for (const l of listeners) l(true);
    detach();
    expect(calls).toEqual(['start', 'stop', 'start', 'stop']);
    expect(listeners.size).toBe(0);
  });
});

const url = process.env.BEMATIC_TEST_POSTGRES_URL;

describe.skipIf(!url)('PostgreSQL leader election', () => {
  const logger = pino({ level: 'silent' });
  const schema = `bematic_leader_${Math.random().toString(16).slice(2, 10)}`;
  const other = `${schema}_b`;
  const inSchema = (s: string) =>
    `${url}${url?.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${s}`)}`;
  const open: PostgresLeaderElection[] = [];
  const election = (instanceId: string, s = schema) => {
    const e = new PostgresLeaderElection({
      connectionString: inSchema(s),
      instanceId,
      leaseMs: 1000,
      clock: new ManualClock(),
      logger,
    });
    open.push(e);
    return e;
  };
  const admin = new pg.Client({ connectionString: url });

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.query(`create schema ${other}`);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((e) => e.close()));
  });
  afterAll(async () => {
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.query(`drop schema if exists ${other} cascade`);
    await admin.end();
  });

  it('one instance leads; when its session ends the next attempt of another takes over', async () => {
    const a = election('a');
    const b = election('b');
    await a.start();
    await b.start();
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    expect(await b.leader()).toBe('a');
    expect(await a.instances()).toEqual(['a', 'b']);

    const changes: boolean[] = [];
    b.onChange((leader) => changes.push(leader));
    await b.tick();
    expect(b.isLeader).toBe(false);
    await a.close();
    expect(a.isLeader).toBe(false);
    expect(await b.leader()).toBeNull();
    await b.tick();
    expect(b.isLeader).toBe(true);
    expect(changes).toEqual([true]);
    expect(await b.leader()).toBe('b');
    expect(await b.instances()).toEqual(['b']);
  });

  it('a leader whose session is killed steps down, and takes the lock again after reconnecting if it is free', async () => {
    const a = election('a');
    await a.start();
    expect(a.isLeader).toBe(true);
    const steppedDown = new Promise<boolean>((resolve) => a.onChange(resolve));
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1`, [
      `bematic:${schema}:a`,
    ]);
    expect(await steppedDown).toBe(false);
    await a.tick();
    expect(a.isLeader).toBe(true);
  });

  it('refuses a second instance with the same id on the same schema', async () => {
    await election('same').start();
    await expect(election('same').start()).rejects.toBeInstanceOf(InstanceIdInUseError);
  });

  it('services in separate schemas of one database each have their own leader', async () => {
    const a = election('a');
    const b = election('b', other);
    await a.start();
    await b.start();
    expect([a.isLeader, b.isLeader]).toEqual([true, true]);
    expect(await a.instances()).toEqual(['a']);
    expect(await b.leader()).toBe('b');
  });
});
