import type { Kysely, Migration } from 'kysely';

/**
 * One row per Slack delivery we acted on (event_id, or trigger_id for slash commands and interactions), so a
 * retry or a replay is recognised as the same delivery, also after a restart.
 */
export const slackDeliveries: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('slack_deliveries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('slack_deliveries_received_idx')
      .on('slack_deliveries')
      .column('received_at')
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('slack_deliveries').ifExists().execute();
  },
};
