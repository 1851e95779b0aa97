import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database, parseDatabaseUrl } from './database.js';
import { DatabaseConnectionError, DatabaseUrlError } from './errors.js';
import { MIGRATIONS, migrateToEmpty, migrateToLatest, migrationStatus } from './migrations/index.js';
import { createRepositories } from './repositories/index.js';

const ALL = Object.keys(MIGRATIONS);

describe('parseDatabaseUrl', () => {
  it.each([
    ['sqlite:./.bematic/bematic.db', { kind: 'sqlite', filename: path.resolve('.bematic/bematic.db') }],
    ['sqlite:data/x.db', { kind: 'sqlite', filename: path.resolve('data/x.db') }],
    ['sqlite:/var/lib/bematic.db', { kind: 'sqlite', filename: '/var/lib/bematic.db' }],
    ['sqlite:///var/lib/bematic.db', { kind: 'sqlite', filename: '/var/lib/bematic.db' }],
    ['sqlite::memory:', { kind: 'sqlite', filename: ':memory:' }],
    ['postgres://u:p@h:5432/db', { kind: 'postgres', connectionString: 'postgres://u:p@h:5432/db' }],
    ['postgresql://h/db', { kind: 'postgres', connectionString: 'postgresql://h/db' }],
  ])('%s', (url, expected) => {
    expect(parseDatabaseUrl(url)).toEqual(expected);
  });

  it.each(['mysql://root@localhost/db', '', 'sqlite:', './bematic.db', 'file:x.db'])(
    'rejects %j with an error naming DATABASE_URL',
    (url) => {
      expect(() => parseDatabaseUrl(url)).toThrow(DatabaseUrlError);
      expect(() => parseDatabaseUrl(url)).toThrow(/DATABASE_URL/);
    },
  );

  it('never repeats a password in the error', () => {
    expect(() => parseDatabaseUrl('mysql://root:s3cret@localhost/db')).toThrow(/root:\*\*\*@localhost/);
    expect(() => parseDatabaseUrl('mysql://root:s3cret@localhost/db')).not.toThrow(/s3cret/);
  });
});

describe('createDatabase with SQLite', () => {
  let dir: string;
  let cwd: string;
  let open: Database[];
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'bematic-dbopen-'));
    cwd = process.cwd();
    open = [];
  });
  afterEach(async () => {
    process.chdir(cwd);
    for (const d of open) await d.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const track = (d: Database) => {
    open.push(d);
    return d;
  };

  it('creates parent folders for a path relative to the working directory', async () => {
    process.chdir(dir);
    const database = track(await createDatabase('sqlite:./.bematic/deep/bematic.db'));
    expect(database.dialect).toBe('sqlite');
    await migrateToLatest(database);
    expect(existsSync(path.join(dir, '.bematic', 'deep', 'bematic.db'))).toBe(true);
  });

  it('turns on WAL, foreign keys and a busy timeout', async () => {
    const database = track(await createDatabase(`sqlite:${path.join(dir, 'p.db')}`, { busyTimeoutMs: 1234 }));
    const pragma = async (name: string) =>
      Object.values((await sql.raw(`pragma ${name}`).execute(database.db)).rows[0] ?? {})[0];
    expect(await pragma('journal_mode')).toBe('wal');
    expect(await pragma('foreign_keys')).toBe(1);
    expect(await pragma('busy_timeout')).toBe(1234);
  });

  it('keeps data across close and reopen', async () => {
    const url = `sqlite:${path.join(dir, 'keep.db')}`;
    const first = await createDatabase(url);
    expect(await migrateToLatest(first)).toEqual({ applied: ALL });
    await createRepositories(first.db).users.upsert({ id: 'U1', role: 'admin' });
    await first.close();
    await first.close();

    const second = track(await createDatabase(url));
    expect(await migrateToLatest(second)).toEqual({ applied: [] });
    expect((await createRepositories(second.db).users.findById('U1'))?.role).toBe('admin');
  });

  it('reports pending migrations, applies them, and can revert them all', async () => {
    const database = track(await createDatabase('sqlite::memory:'));
    expect(await migrationStatus(database)).toEqual({
      migrations: ALL.map((name) => ({ name, executedAt: null })),
      pending: ALL,
    });
    await migrateToLatest(database.db);
    expect((await migrationStatus(database)).pending).toEqual([]);
    expect(await migrateToEmpty(database)).toEqual({ reverted: [...ALL].reverse() });
    const tables = await database.db.introspection.getTables();
    expect(tables.map((t) => t.name)).toEqual([]);
  });
});

describe('createDatabase with an unreachable PostgreSQL', () => {
  it('fails at once with a clear error that hides the password', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused immediately.
    const attempt = createDatabase('postgres://bematic:s3cret@127.0.0.1:1/bematic');
    await expect(attempt).rejects.toBeInstanceOf(DatabaseConnectionError);
    await expect(createDatabase('postgres://bematic:s3cret@127.0.0.1:1/bematic')).rejects.toThrow(
      /DATABASE_URL "postgres:\/\/bematic:\*\*\*@127\.0\.0\.1:1\/bematic"/,
    );
    await expect(createDatabase('postgres://bematic:s3cret@127.0.0.1:1/bematic')).rejects.not.toThrow(
      /s3cret/,
    );
  });
});

const postgresUrl = process.env.BEMATIC_TEST_POSTGRES_URL;

describe.skipIf(!postgresUrl)('createDatabase with PostgreSQL', () => {
  it('reads BIGINT and NUMERIC as numbers and works inside its own schema', async () => {
    const schema = `bematic_open_${Math.random().toString(16).slice(2, 10)}`;
    const database = await createDatabase(postgresUrl ?? '', { schema });
    try {
      expect(database).toMatchObject({ dialect: 'postgres', schema });
      const { rows } = await sql<{
        big: unknown;
        num: unknown;
        path: unknown;
      }>`select 1700000000000::bigint as big, 1.25::numeric as num, current_schema() as path`.execute(
        database.db,
      );
      expect(rows[0]).toEqual({ big: 1_700_000_000_000, num: 1.25, path: schema });
      expect(await migrateToLatest(database)).toEqual({ applied: ALL });
      // Other tests' schemas may exist meanwhile; none of ours is outside this one, nothing lands in public.
      const tables = await database.db.introspection.getTables({ withInternalKyselyTables: true });
      const ours = tables.filter((t) => t.schema === schema).map((t) => t.name);
      expect(ours).toEqual(expect.arrayContaining(['tasks', 'kysely_migration', 'kysely_migration_lock']));
      expect(tables.filter((t) => t.schema === 'public')).toEqual([]);
    } finally {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(database.db);
      await database.close();
    }
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(createDatabase(postgresUrl ?? '', { schema: 'x; drop table y' })).rejects.toThrow(
      DatabaseUrlError,
    );
  });
});

describe('SQLite prepared statements', () => {
  it('reuses them across queries, past the cache size and across a schema change', async () => {
    const database = await createDatabase('sqlite::memory:');
    try {
      await sql`create table t (id integer primary key, a text)`.execute(database.db);
      await database.db
        .insertInto('t' as never)
        .values({ id: 1, a: 'x' } as never)
        .execute();
      const read = () => sql<Record<string, unknown>>`select * from t where id = ${1}`.execute(database.db);
      expect((await read()).rows).toEqual([{ id: 1, a: 'x' }]);
      // More distinct statements than are kept: the first is evicted, and prepared again when needed.
      for (let i = 0; i < 600; i++) await sql.raw(`select ${i} as n`).execute(database.db);
      expect((await read()).rows).toEqual([{ id: 1, a: 'x' }]);
      // A statement prepared before a schema change sees the new schema.
      await sql`alter table t add column b text default 'y'`.execute(database.db);
      expect((await read()).rows).toEqual([{ id: 1, a: 'x', b: 'y' }]);
      await sql`drop table t`.execute(database.db);
      await expect(read()).rejects.toThrow(/no such table/);
    } finally {
      await database.close();
    }
  });
});
