import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe } from 'vitest';
import { describeRepositoryConformance } from '../../test/db/repository-conformance.js';
import { openPostgresSchema } from '../../test/support/database.js';
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
    return openPostgresSchema(postgresUrl ?? '', 'bematic_test');
  });
});
