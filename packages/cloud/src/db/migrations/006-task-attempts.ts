import type { Kysely, Migration } from 'kysely';

/**
 * Each send of a task's TASK_SUBMIT gets the next attempt number; every message about the task carries it back,
 * and the cloud applies a change only when the row's agent and attempt still match (one compare-and-set).
 * Existing rows start at 0: no send of theirs carried a number.
 */
export const taskAttempts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('tasks')
      .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('tasks').dropColumn('attempt').execute();
  },
};
