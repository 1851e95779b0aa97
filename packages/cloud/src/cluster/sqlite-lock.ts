import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

/** A second cloud process on the same SQLite file: SQLite is the single-process embedded mode. */
export class SqliteInUseError extends Error {
  readonly code = 'SQLITE_IN_USE';
  constructor(readonly filename: string) {
    super(
      `Another bematic cloud is already running on ${filename}. SQLite is for one instance; ` +
        'to run several instances, point every one at PostgreSQL with DATABASE_URL=postgres://user@host/db ' +
        '(see "Deploying several instances" in the README).',
    );
    this.name = 'SqliteInUseError';
  }
}

export interface ProcessLock {
  release(): void;
}

/**
 * Holds an exclusive lock on `<database>.lock` for as long as this process runs
 * the cloud. The lock is SQLite's own file lock (fcntl on Unix, LockFileEx on
 * Windows) on a side database kept open in EXCLUSIVE locking mode, so the
 * operating system drops it when the process dies, kill -9 included; a lock
 * row or pid file would outlive a crash. Administrative commands (`bematic
 * keys`, `projects`) do not take it and keep working beside a running cloud.
 */
export function lockSqliteDatabase(filename: string): ProcessLock {
  const lockFile = `${filename}.lock`;
  // The lock is taken before the database is opened, so on a first start its folder may not exist yet.
  mkdirSync(path.dirname(filename), { recursive: true });
  const side = new BetterSqlite3(lockFile, { timeout: 0 });
  try {
    side.pragma('locking_mode = EXCLUSIVE');
    side.exec('create table if not exists holder (id integer primary key, pid integer, started_at integer)');
    // The first write in EXCLUSIVE mode takes the exclusive lock and keeps it until close.
    side
      .prepare('insert or replace into holder (id, pid, started_at) values (1, ?, ?)')
      .run(process.pid, Date.now());
  } catch (err) {
    side.close();
    if (isBusy(err)) throw new SqliteInUseError(filename);
    throw err;
  }
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      side.close();
    },
  };
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
