import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase } from '../db/database.js';
import { lockSqliteDatabase, SqliteInUseError } from './sqlite-lock.js';

describe('SQLite single-process lock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bematic-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second holder, points to PostgreSQL, and is free again once released', () => {
    const file = path.join(dir, 'bematic.db');
    const first = lockSqliteDatabase(file);
    let refusal: unknown;
    try {
      lockSqliteDatabase(file);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(SqliteInUseError);
    expect((refusal as Error).message).toContain(file);
    expect((refusal as Error).message).toMatch(/DATABASE_URL=postgres:\/\//);
    first.release();
    lockSqliteDatabase(file).release();
  });

  it('is taken on a first start, when the database folder does not exist yet', () => {
    const file = path.join(dir, 'fresh', '.bematic', 'bematic.db');
    const lock = lockSqliteDatabase(file);
    expect(() => lockSqliteDatabase(file)).toThrow(SqliteInUseError);
    lock.release();
  });

  it('leaves the database itself open to administrative commands', async () => {
    const file = path.join(dir, 'bematic.db');
    const lock = lockSqliteDatabase(file);
    const database = await createDatabase(`sqlite:${file}`);
    try {
      await database.db.schema.createTable('t').addColumn('x', 'integer').execute();
    } finally {
      await database.close();
      lock.release();
    }
  });
});
