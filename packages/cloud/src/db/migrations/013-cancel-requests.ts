import type { Kysely, Migration } from 'kysely';

/**
 * Cancels sent to an agent and not confirmed yet, in the database rather than in the memory of the instance
 * that sent them: whichever instance hears from the agent next (its confirmation, its loss, its reconnect)
 * finishes the cancellation the user asked for.
 */
export const cancelRequests: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('cancel_requests')
      .addColumn('task_id', 'text', (c) => c.primaryKey().references('tasks.id').onDelete('cascade'))
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('requested_at', 'bigint', (c) => c.notNull())
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('cancel_requests').ifExists().execute();
  },
};
