import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  Kysely,
  type KyselyConfig,
  type LogEvent,
  PostgresAdapter,
  PostgresDialect,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteStatement,
} from 'kysely';
import pg from 'pg';
import { type Logger, pino } from 'pino';
import { DatabaseConnectionError, DatabaseUrlError, redactUrl } from './errors.js';
import type { Schema } from './schema.js';

export type DatabaseDialect = 'sqlite' | 'postgres';

export interface Database {
  db: Kysely<Schema>;
  dialect: DatabaseDialect;
  /** PostgreSQL schema the connection's search_path points at, when one was asked for. */
  schema?: string;
  /** PostgreSQL only: the connection pool under `db`, for libraries that take a pg pool (the rate limiter's store). */
  pool?: pg.Pool;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  logger?: Logger;
  /** PostgreSQL only: put every connection's search_path on this schema (created if missing). */
  schema?: string;
  /** PostgreSQL only: pool size (default 10). */
  maxConnections?: number;
  /** SQLite only: how long a writer waits for a lock held by another connection (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Every query and query error with its duration (e.g. MetricsCollector.kyselyLogHook). */
  onQuery?: (event: LogEvent) => void;
}

export type DatabaseTarget =
  | { kind: 'sqlite'; filename: string }
  | { kind: 'postgres'; connectionString: string };

/**
 * `sqlite:./rel/path.db` (relative to the working directory), `sqlite:/abs/path.db`,
 * `sqlite::memory:`, `postgres://…` or `postgresql://…`.
 */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  const trimmed = url.trim();
  if (trimmed.startsWith('postgres://') || trimmed.startsWith('postgresql://')) {
    return { kind: 'postgres', connectionString: trimmed };
  }
  if (trimmed.startsWith('sqlite:')) {
    let rest = trimmed.slice('sqlite:'.length);
    // Also accept the URL-ish spellings sqlite:///abs/path and sqlite://rel/path.
    if (rest.startsWith('//')) rest = rest.slice(2);
    if (rest === '') throw new DatabaseUrlError(url, 'expected a file path after "sqlite:", or ":memory:"');
    if (rest === ':memory:') return { kind: 'sqlite', filename: ':memory:' };
    return { kind: 'sqlite', filename: path.resolve(process.cwd(), rest) };
  }
  throw new DatabaseUrlError(
    url,
    'use sqlite:./path/to.db, sqlite:/absolute/path.db, sqlite::memory: or postgres://user@host:5432/db',
  );
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export async function createDatabase(url: string, opts: DatabaseOptions = {}): Promise<Database> {
  const logger = opts.logger ?? pino({ level: 'silent' });
  const target = parseDatabaseUrl(url);
  return target.kind === 'sqlite'
    ? openSqlite(target.filename, opts, logger)
    : openPostgres(url, opts, logger);
}

function openSqlite(filename: string, opts: DatabaseOptions, logger: Logger): Database {
  if (filename !== ':memory:') mkdirSync(path.dirname(filename), { recursive: true });
  const sqlite = new BetterSqlite3(filename);
  if (filename !== ':memory:') sqlite.pragma('journal_mode = WAL');
  // WAL + NORMAL is durable across application crashes and much faster than FULL.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
  const db = new Kysely<Schema>({
    dialect: new SqliteDialect({ database: new StatementCache(sqlite) }),
    log: queryLog(logger, opts.onQuery),
  });
  logger.info({ dialect: 'sqlite', filename }, 'database opened');
  return { db, dialect: 'sqlite', close: once(() => db.destroy()) };
}

/** How many distinct statements stay prepared per SQLite connection (least recently used go first). */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely's SQLite driver calls prepare() for every query; compiling the SQL
 * again each time was a sixth of the cloud's busy time. The same SQL text gets
 * the same prepared statement (better-sqlite3 re-prepares it itself after a
 * schema change), so only binding and stepping remain per query.
 */
class StatementCache implements SqliteDatabase {
  private readonly statements = new Map<string, SqliteStatement>();

  constructor(private readonly sqlite: BetterSqlite3.Database) {}

  prepare(sql: string): SqliteStatement {
    const cached = this.statements.get(sql);
    if (cached) {
      this.statements.delete(sql);
      this.statements.set(sql, cached);
      return cached;
    }
    const statement = this.sqlite.prepare(sql);
    this.statements.set(sql, statement);
    if (this.statements.size > STATEMENT_CACHE_SIZE) {
      const oldest = this.statements.keys().next();
      if (!oldest.done) this.statements.delete(oldest.value);
    }
    return statement;
  }

  close(): void {
    this.statements.clear();
    this.sqlite.close();
  }
}

async function openPostgres(url: string, opts: DatabaseOptions, logger: Logger): Promise<Database> {
  if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
    throw new DatabaseUrlError(url, `schema name "${opts.schema}" must be a plain SQL identifier`);
  }
  // BIGINT (timestamps, counts) and NUMERIC come back as strings by default;
  // epoch milliseconds and token counts fit a double exactly, so read them as numbers.
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));
  types.setTypeParser(pg.types.builtins.NUMERIC, (v: string) => Number(v));
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.maxConnections ?? 10,
    types,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client losing its connection must not crash the process.
  pool.on('error', (err) => logger.error({ err }, 'postgres pool connection error'));
  // Connect once now, so a wrong URL or a server that is down fails at start-up with a clear message.
  try {
    const client = await pool.connect();
    try {
      if (opts.schema) await client.query(`create schema if not exists "${opts.schema}"`);
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new DatabaseConnectionError(url, err);
  }
  const db = new Kysely<Schema>({
    dialect: new PostgresDialect({ pool }),
    log: queryLog(logger, opts.onQuery),
  });
  logger.info({ dialect: 'postgres', url: redactUrl(url), schema: opts.schema }, 'database opened');
  return {
    db,
    dialect: 'postgres',
    ...(opts.schema ? { schema: opts.schema } : {}),
    pool,
    close: once(() => db.destroy()),
  };
}

function queryLog(logger: Logger, onQuery: DatabaseOptions['onQuery']): KyselyConfig['log'] {
  return (event) => {
    try {
      onQuery?.(event);
    } catch (err) {
      logger.warn({ err }, 'query observer failed');
    }
    if (event.level === 'error') {
      logger.debug({ err: event.error, sql: event.query.sql, ms: event.queryDurationMillis }, 'query failed');
    } else if (logger.isLevelEnabled('trace')) {
      logger.trace({ sql: event.query.sql, ms: event.queryDurationMillis }, 'query');
    }
  };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => {
    done ??= fn();
    return done;
  };
}

/** Which dialect a Kysely instance (or transaction) speaks. */
export function dialectOf(db: Kysely<unknown> | Kysely<Schema>): DatabaseDialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}
