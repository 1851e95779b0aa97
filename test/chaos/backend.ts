import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';

/** The database a process suite's cloud runs on, as the test reads it behind the processes' backs. */
export interface TestDatabase {
  readonly kind: 'sqlite' | 'postgres';
  /** DATABASE_URL for `bematic migrate|cloud|keys|projects`. */
  readonly url: string;
  /** `?` placeholders on both; bigint columns come back as numbers. */
  query<T>(sql: string, ...params: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export type Backend = TestDatabase['kind'];

/** sqlite always; postgres too when BEMATIC_TEST_POSTGRES_URL is set (as CI does). */
export function testBackends(): Backend[] {
  return process.env.BEMATIC_TEST_POSTGRES_URL ? ['sqlite', 'postgres'] : ['sqlite'];
}

export async function openTestDatabase(kind: Backend, dir: string): Promise<TestDatabase> {
  return kind === 'sqlite' ? sqlite(dir) : postgres(process.env.BEMATIC_TEST_POSTGRES_URL ?? '');
}

function sqlite(dir: string): TestDatabase {
  const file = path.join(dir, 'bematic.db');
  return {
    kind: 'sqlite',
    url: `sqlite:${file}`,
    query: async <T>(sql: string, ...params: unknown[]) => {
      // A connection per query: the cloud process owns the file, and may be killed at any moment.
      const db = new Database(file, { fileMustExist: true, readonly: /^\s*select\b/i.test(sql) });
      try {
        const statement = db.prepare(sql);
        if (statement.reader) return statement.all(...params) as T[];
        statement.run(...params);
        return [];
      } finally {
        db.close();
      }
    },
    close: async () => {},
  };
}

const INT8_OID = 20;

/**
 * A schema of its own in the test database (the processes reach it through the URL's search_path, as the
 * other PostgreSQL process tests do), so runs side by side never see each other's rows; dropped on close.
 */
async function postgres(baseUrl: string): Promise<TestDatabase> {
  const schema = `bematic_chaos_${randomBytes(6).toString('hex')}`;
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const client = new pg.Client({
    connectionString: url.toString(),
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  await client.connect();
  await client.query(`create schema ${schema}`);
  return {
    kind: 'postgres',
    url: url.toString(),
    query: async <T>(sql: string, ...params: unknown[]) => {
      let n = 0;
      const result = await client.query(
        sql.replace(/\?/g, () => `$${++n}`),
        params,
      );
      return result.rows as T[];
    },
    close: async () => {
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    },
  };
}
