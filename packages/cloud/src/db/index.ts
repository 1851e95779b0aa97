/**
 * Persistence: one Kysely code path for SQLite and PostgreSQL.
 *
 *   const database = await createDatabase(process.env.DATABASE_URL ?? 'sqlite:./.bematic/bematic.db', { logger });
 *   await migrateToLatest(database);
 *   const repos = createRepositories(database.db);
 *   ...
 *   await database.close();
 */
export {
  createDatabase,
  type Database,
  type DatabaseDialect,
  type DatabaseOptions,
  type DatabaseTarget,
  dialectOf,
  parseDatabaseUrl,
} from './database.js';
export {
  DatabaseConnectionError,
  DatabaseUrlError,
  DuplicateRecordError,
  MigrationError,
  RecordNotFoundError,
  StoredDataError,
} from './errors.js';
export { newArchiveId, newId, newTaskId } from './ids.js';
export {
  MIGRATIONS,
  type MigrationState,
  migrateToEmpty,
  migrateToLatest,
  migrationStatus,
} from './migrations/index.js';
export { createRepositories, type RepositoryOptions } from './repositories/index.js';
export type * from './schema.js';
