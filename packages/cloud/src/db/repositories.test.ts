import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe } from 'vitest';
import { describeRepositoryConformance } from '../../test/db/repository-conformance.js';
import { createDatabase, type Database } from './database.js';

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describeRepositoryConformance('SQLite', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bematic-db-'));
  tempDirs.push(dir);
  return createDatabase(`sqlite:${path.join(dir, 'nested', 'bematic.db')}`);
});

const postgresUrl = process.env.BEMATIC_TEST_POSTGRES_URL;

describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  // Each run gets its own schema (search_path set per pooled connection), dropped on close.
  describeRepositoryConformance('PostgreSQL', async (): Promise<Database> => {
    const schema = `bematic_test_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const database = await createDatabase(postgresUrl ?? '', { schema });
    return {
      ...database,
      close: async () => {
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(database.db);
        await database.close();
      },
    };
  });
});
