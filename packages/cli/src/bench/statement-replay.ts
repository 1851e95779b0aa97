import { copyFile, rm } from 'node:fs/promises';
import Database from 'better-sqlite3';
import type { LogEvent } from 'kysely';
import pg from 'pg';
import { type BenchDatabase, onPostgresServer, postgresServerUrl } from './databases.js';
import { now } from './harness.js';
import { round } from './stats.js';

/**
 * The floor under a scenario's database work: the very statements the cloud ran, with their parameters and
 * in their order (its begins, savepoints and commits included), run again back to back on the bare driver,
 * against a copy of the database taken before they first ran. No Kysely, no event loop work, no sockets:
 * what SQLite or PostgreSQL alone needs for that work on this machine.
 */
export interface RecordedStatement {
  sql: string;
  parameters: readonly unknown[];
}

export interface ReplayResult {
  statements: number;
  commits: number;
  ms: number;
  /** Statements the copy refused (a unique key taken by a write recorded on another connection, say). */
  errors: number;
  /** Where the time went: the costliest statements (their SQL's start), with their count and total time. */
  costliest: Array<{ sql: string; count: number; ms: number }>;
}

/** Per statement text: how many ran and how long they took together. */
class StatementCosts {
  private readonly bySql = new Map<string, { count: number; ms: number }>();

  add(sql: string, ms: number): void {
    const c = this.bySql.get(sql) ?? { count: 0, ms: 0 };
    c.count++;
    c.ms += ms;
    this.bySql.set(sql, c);
  }

  top(n: number): ReplayResult['costliest'] {
    return [...this.bySql.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, n)
      .map(([sql, c]) => ({ sql: sql.replace(/\s+/g, ' ').slice(0, 120), count: c.count, ms: round(c.ms) }));
  }
}

/** Collects what the cloud runs while `recording` is on; plug `observe` into the cloud's query observer. */
export class StatementRecorder {
  readonly statements: RecordedStatement[] = [];
  recording = false;

  readonly observe = (event: LogEvent): void => {
    if (!this.recording || event.level !== 'query') return;
    this.statements.push({ sql: event.query.sql, parameters: event.query.parameters });
  };
}

const isCommit = (s: string) => /^\s*commit\b/i.test(s);

export interface DatabaseSnapshot {
  replay(statements: readonly RecordedStatement[]): Promise<ReplayResult>;
  drop(): Promise<void>;
}

/**
 * A copy of the database as it is now, taken while nothing is connected to it (the cloud closed): SQLite's
 * file, PostgreSQL's database (CREATE DATABASE … TEMPLATE needs its source idle).
 */
export async function snapshot(db: BenchDatabase, copyPath: string): Promise<DatabaseSnapshot> {
  if (db.dialect === 'sqlite') {
    const source = db.url.slice('sqlite:'.length);
    for (const suffix of ['', '-wal'])
      await copyFile(`${source}${suffix}`, `${copyPath}${suffix}`).catch((err: NodeJS.ErrnoException) => {
        if (suffix === '' || err.code !== 'ENOENT') throw err;
      });
    return {
      replay: (statements) => replaySqlite(copyPath, statements),
      drop: async () => {
        for (const suffix of ['', '-wal', '-shm']) await rm(`${copyPath}${suffix}`, { force: true });
      },
    };
  }
  const server = postgresServerUrl();
  if (!server) throw new Error('no PostgreSQL server configured');
  const source = new URL(db.url).pathname.slice(1);
  const name = `${source}_floor`;
  await onPostgresServer(server, `create database ${name} template ${source}`);
  const copy = new URL(db.url);
  copy.pathname = `/${name}`;
  return {
    replay: (statements) => replayPostgres(copy.toString(), statements),
    drop: () => onPostgresServer(server, `drop database if exists ${name} with (force)`),
  };
}

/**
 * Runs each statement with `execute`, in order, one at a time, and times them; a statement the copy refuses is
 * counted and handed to `refused` (PostgreSQL must end its aborted transaction), and the replay goes on.
 */
async function replayEach(
  statements: readonly RecordedStatement[],
  execute: (s: RecordedStatement) => unknown,
  refused: () => Promise<void> = async () => {},
): Promise<ReplayResult> {
  let errors = 0;
  let commits = 0;
  const costs = new StatementCosts();
  const t0 = now();
  for (const s of statements) {
    const started = now();
    try {
      await execute(s);
      if (isCommit(s.sql)) commits++;
    } catch {
      errors++;
      await refused();
    }
    costs.add(s.sql, now() - started);
  }
  return { statements: statements.length, commits, ms: now() - t0, errors, costliest: costs.top(10) };
}

async function replaySqlite(file: string, statements: readonly RecordedStatement[]): Promise<ReplayResult> {
  const db = new Database(file);
  // As the cloud opens it (packages/cloud/src/db/database.ts).
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const prepared = new Map<string, Database.Statement>();
  try {
    return await replayEach(statements, (s) => {
      let stmt = prepared.get(s.sql);
      if (!stmt) {
        stmt = db.prepare(s.sql);
        prepared.set(s.sql, stmt);
      }
      // As Kysely's SQLite driver runs them: the parameters as one array.
      return stmt.reader ? stmt.all(s.parameters) : stmt.run(s.parameters);
    });
  } finally {
    db.close();
  }
}

/** One connection, one statement at a time: node-postgres does not pipeline. */
async function replayPostgres(url: string, statements: readonly RecordedStatement[]): Promise<ReplayResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await replayEach(
      statements,
      (s) => client.query(s.sql, s.parameters as unknown[]),
      // A failed statement aborts PostgreSQL's transaction: end it as the cloud's retry would.
      () =>
        client.query('rollback').then(
          () => undefined,
          () => undefined,
        ),
    );
  } finally {
    await client.end();
  }
}
