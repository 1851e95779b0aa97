import type { Kysely, Migration } from 'kysely';

/**
 * Console sign-in credentials (one-time login tokens and session ids) in the database rather than in the
 * memory of the instance that issued them, so every instance behind a load balancer serves the whole
 * dashboard: a link printed by one is redeemed on another, a session works everywhere, a sign-out ends it
 * everywhere. Only SHA-256 hashes are stored, never a token or a session id.
 */
export const consoleCredentials: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('console_credentials')
      .addColumn('hash', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('console_credentials_expires_at')
      .on('console_credentials')
      .column('expires_at')
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('console_credentials').ifExists().execute();
  },
};
