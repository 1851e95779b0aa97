import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDatabase } from '@bematic/cloud';
import { sql } from 'kysely';

/** A fresh, empty database for one scenario run; `drop` removes it. */
export interface BenchDatabase {
  dialect: 'sqlite' | 'postgres';
  url: string;
  drop(): Promise<void>;
}

/** Where PostgreSQL runs are made, if anywhere: a server the benchmark may create databases on. */
export function postgresServerUrl(): string | undefined {
  return process.env.BEMATIC_BENCH_POSTGRES_URL ?? process.env.BEMATIC_TEST_POSTGRES_URL;
}

let made = 0;

export async function sqliteDatabase(): Promise<BenchDatabase> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bematic-bench-db-'));
  return {
    dialect: 'sqlite',
    url: `sqlite:${path.join(dir, 'bematic.db')}`,
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}

/** One statement on the server's own database (creating and dropping the benchmark's). */
export async function onPostgresServer(serverUrl: string, statement: string): Promise<void> {
  const server = await createDatabase(serverUrl, { maxConnections: 1 });
  try {
    await sql.raw(statement).execute(server.db);
  } finally {
    await server.close();
  }
}

/** A new database on the server (CREATE DATABASE), dropped afterwards with any connection left to it. */
export async function postgresDatabase(serverUrl: string): Promise<BenchDatabase> {
  const name = `bematic_bench_${process.pid}_${made++}`;
  const admin = (statement: string) => onPostgresServer(serverUrl, statement);
  await admin(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    dialect: 'postgres',
    url: url.toString(),
    drop: () => admin(`drop database if exists ${name} with (force)`),
  };
}

/** SQLite always; PostgreSQL beside it when a server is configured. */
export async function benchDatabases(
  log: (line: string) => void,
  opts: { postgres?: boolean } = {},
): Promise<Array<() => Promise<BenchDatabase>>> {
  if (opts.postgres === false) return [sqliteDatabase];
  const server = postgresServerUrl();
  if (!server) log('  PostgreSQL: skipped (set BEMATIC_BENCH_POSTGRES_URL or BEMATIC_TEST_POSTGRES_URL)');
  return [sqliteDatabase, ...(server ? [() => postgresDatabase(server)] : [])];
}
