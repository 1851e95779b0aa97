import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../schema.js';

/**
 * Runs fn in a transaction, joining the caller's when `db` already is one
 * (Kysely cannot nest them), so a repository bound by Repositories.transaction
 * stays inside it.
 */
export function inTransaction<T>(db: Kysely<Schema>, fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db);
  return db.transaction().execute((trx: Transaction<Schema>) => fn(trx));
}
