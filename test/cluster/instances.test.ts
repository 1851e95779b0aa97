import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));

interface Started {
  child: ChildProcess;
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
  output(): string;
}

/** `bematic cloud` OS processes; each test kills what it started. */
function processes(env: () => NodeJS.ProcessEnv, cwd: () => string) {
  const children: ChildProcess[] = [];
  const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Started => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...env(), ...extraEnv }, cwd: cwd() });
    children.push(child);
    let out = '';
    const append = (d: Buffer) => {
      out += d.toString();
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const waitFor = (pattern: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) resolve(m);
        };
        child.stdout?.on('data', check);
        child.stderr?.on('data', check);
        child.once('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}:\n${out}`)));
        check();
      });
    return { child, waitFor, exited, output: () => out };
  };
  const stopAll = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(
      children
        .splice(0)
        .map((c) =>
          c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null,
        ),
    );
  };
  return { start, stopAll };
}

describe('SQLite stays single-process', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const procs = processes(
    () => env,
    () => dir,
  );

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error('packages/cli/dist is missing: run `npm run build` first');
    dir = await mkdtemp(path.join(tmpdir(), 'bematic-sqlite-lock-'));
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      DATABASE_URL: `sqlite:${path.join(dir, 'bematic.db')}`,
      BEMATIC_LOG_LEVEL: 'warn',
      BEMATIC_LOG_FORMAT: 'json',
      PORT: '0',
    };
  });
  afterEach(() => procs.stopAll());
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a second cloud on the same file refuses to start, pointing to PostgreSQL, even after kill -9 of the first it is free', async () => {
    const first = procs.start(['cloud', '--instance-id', 'first']);
    await first.waitFor(/Instance: first/);

    const second = procs.start(['cloud', '--instance-id', 'second']);
    expect(await second.exited).toBe(2);
    expect(second.output()).toMatch(/Another bematic cloud is already running on .*bematic\.db/);
    expect(second.output()).toMatch(/DATABASE_URL=postgres:\/\//);
    expect(second.output()).not.toMatch(/\n\s+at /);

    // Administrative commands still work beside the running cloud.
    const keys = await run(process.execPath, [CLI, 'keys', 'create', 'box'], { env, cwd: dir });
    expect(keys.stdout).toMatch(/bmk_/);

    first.child.kill('SIGKILL');
    await first.exited;
    const third = procs.start(['cloud', '--instance-id', 'third']);
    const [, url] = await third.waitFor(/Bematic cloud: (http:\/\/\S+)/);
    const ready = (await (await fetch(`${url}/readyz`)).json()) as { cluster: unknown };
    expect(ready.cluster).toEqual({
      instanceId: 'third',
      mode: 'single',
      isLeader: true,
      leader: 'third',
      instances: ['third'],
    });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/bematic_cluster_leader\{instance_id="third"\} 1/);
    expect(metrics).toMatch(/bematic_cloud_info\{instance_id="third"\} 1/);
  });
});

const postgresUrl = process.env.BEMATIC_TEST_POSTGRES_URL;

describe.skipIf(!postgresUrl)('several instances on one PostgreSQL database', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const schema = `bematic_cluster_${Math.random().toString(16).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  const procs = processes(
    () => env,
    () => dir,
  );
  const LEASE_MS = 500;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error('packages/cli/dist is missing: run `npm run build` first');
    dir = await mkdtemp(path.join(tmpdir(), 'bematic-cluster-'));
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    const sep = postgresUrl?.includes('?') ? '&' : '?';
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      // Each run in its own schema, so parallel runs on one database never share a leader.
      DATABASE_URL: `${postgresUrl}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      BEMATIC_LOG_LEVEL: 'info',
      BEMATIC_LOG_FORMAT: 'json',
      BEMATIC_LEADER_LEASE_MS: String(LEASE_MS),
      PORT: '0',
    };
  });
  afterEach(() => procs.stopAll());
  afterAll(async () => {
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  interface Ready {
    cluster: {
      instanceId: string;
      mode: string;
      isLeader: boolean;
      leader: string | null;
      instances: string[];
    };
  }
  const readyz = async (url: string) => ((await (await fetch(`${url}/readyz`)).json()) as Ready).cluster;

  it('three instances elect one leader; kill -9 of the leader moves the leader-only jobs to another within a lease', async () => {
    const started = ['a', 'b', 'c'].map((id) => ({ id, proc: procs.start(['cloud', '--instance-id', id]) }));
    const urls = new Map<string, string>();
    for (const { id, proc } of started) {
      const [, url] = await proc.waitFor(/Bematic cloud: (http:\/\/\S+)/);
      urls.set(id, url!);
    }
    const first = await readyz(urls.get('a')!);
    expect(first).toMatchObject({ mode: 'postgres', instances: ['a', 'b', 'c'] });
    const leaderId = first.leader!;
    expect(['a', 'b', 'c']).toContain(leaderId);
    for (const id of ['a', 'b', 'c']) {
      const seen = await readyz(urls.get(id)!);
      expect(seen).toMatchObject({ instanceId: id, leader: leaderId, isLeader: id === leaderId });
      const metrics = await (await fetch(`${urls.get(id)}/metrics`)).text();
      expect(metrics).toContain(`bematic_cluster_leader{instance_id="${id}"} ${id === leaderId ? 1 : 0}`);
    }

    // A duplicate instance id is refused with a clear message.
    const duplicate = procs.start(['cloud', '--instance-id', leaderId]);
    expect(await duplicate.exited).toBe(2);
    expect(duplicate.output()).toMatch(new RegExp(`instance id "${leaderId}"`));

    // An agent whose socket the leader holds: when the leader dies, the next one marks it offline.
    await admin.query(
      `insert into ${schema}.agents (id, status, instance_id, created_at, last_seen_at) values ('box', 'online', $1, 0, 0)`,
      [leaderId],
    );
    const leader = started.find((s) => s.id === leaderId)!.proc;
    const rest = started.filter((s) => s.id !== leaderId);
    const takeover = Promise.race(
      rest.map(({ id, proc }) => proc.waitFor(/"msg":"leading"/).then(() => ({ id, at: Date.now() }))),
    );
    const released = Promise.race(
      rest.map(({ proc }) => proc.waitFor(/"msg":"agents of instances that are gone marked offline"/)),
    );
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    const next = await takeover;
    // One lease, plus what a loaded machine adds to a timer and a round trip.
    expect(next.at - killedAt).toBeLessThan(LEASE_MS + 1500);
    for (const { id } of rest) {
      expect(await readyz(urls.get(id)!)).toMatchObject({
        leader: next.id,
        isLeader: id === next.id,
        instances: rest.map((r) => r.id),
      });
    }
    const metrics = await (await fetch(`${urls.get(next.id)}/metrics`)).text();
    expect(metrics).toContain(`bematic_cluster_leader{instance_id="${next.id}"} 1`);
    await released;
    const { rows } = await admin.query(`select status, instance_id from ${schema}.agents where id = 'box'`);
    expect(rows).toEqual([{ status: 'offline', instance_id: null }]);
  });
});
