/** A row that a repository method needs does not exist. */
export class RecordNotFoundError extends Error {
  readonly code = 'NOT_FOUND';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`);
    this.name = 'RecordNotFoundError';
  }
}

/** A stored JSON column no longer matches its expected shape. */
export class StoredDataError extends Error {
  readonly code = 'STORED_DATA_INVALID';
  constructor(
    readonly table: string,
    readonly column: string,
    readonly rowId: string,
    detail: string,
  ) {
    super(`${table}.${column} of ${rowId} is not valid: ${detail}`);
    this.name = 'StoredDataError';
  }
}

/** DATABASE_URL (or a URL handed to createDatabase) names no supported database. */
export class DatabaseUrlError extends Error {
  readonly code = 'INVALID_DATABASE_URL';
  constructor(url: string, detail: string) {
    super(`DATABASE_URL "${redactUrl(url)}" is not supported: ${detail}`);
    this.name = 'DatabaseUrlError';
  }
}

export class MigrationError extends Error {
  readonly code = 'MIGRATION_FAILED';
  constructor(
    readonly migration: string | undefined,
    cause: unknown,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(migration ? `migration ${migration} failed: ${why}` : `migrations could not run: ${why}`, {
      cause,
    });
    this.name = 'MigrationError';
  }
}

/** Hides a password in a connection URL so it never reaches logs or error messages. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

/** The database named by DATABASE_URL could not be reached or refused us. */
export class DatabaseConnectionError extends Error {
  readonly code = 'DATABASE_UNREACHABLE';
  constructor(url: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message || cause.name : String(cause);
    super(`cannot connect to the database at DATABASE_URL "${redactUrl(url)}": ${why}`, { cause });
    this.name = 'DatabaseConnectionError';
  }
}

/** A row with the same unique key (id, channel, key hash …) already exists. */
export class DuplicateRecordError extends Error {
  readonly code = 'DUPLICATE';
  constructor(
    readonly entity: string,
    readonly key: string,
    cause: unknown,
  ) {
    super(`${entity} ${key} already exists`, { cause });
    this.name = 'DuplicateRecordError';
  }
}

/** Unique-constraint violation on either dialect (SQLite SQLITE_CONSTRAINT_*, PostgreSQL 23505). */
export function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code = err.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Runs an insert/update, turning a unique violation into a DuplicateRecordError. */
export async function guardUnique<T>(entity: string, key: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isUniqueViolation(err)) throw new DuplicateRecordError(entity, key, err);
    throw err;
  }
}
