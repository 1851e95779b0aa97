import { type Kysely, type Migration, sql } from 'kysely';
import { dialectOf } from '../database.js';

/**
 * rate-limiter-flexible's PostgreSQL store, in the layout the library reads (key, points, expire in epoch ms),
 * so a user's allowance is one count for every cloud instance. SQLite is single-process and counts in memory.
 */
export const rateLimits: Migration = {
  async up(db: Kysely<unknown>) {
    if (dialectOf(db) !== 'postgres') return;
    await db.schema
      .createTable('rate_limits')
      .addColumn('key', sql`varchar(255)`, (c) => c.primaryKey())
      .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('expire', 'bigint')
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('rate_limits').ifExists().execute();
  },
};
