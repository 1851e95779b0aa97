import type { Kysely, Migration } from 'kysely';

/**
 * The Plan first button: a plan may replace a task (which is cancelled and whose message becomes the plan's).
 * At most one plan replaces a task, so of two clicks (on any instances) only the one whose insert lands
 * starts a plan.
 */
export const planFirst: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('task_plans').addColumn('replaces_task_id', 'text').execute();
    await db.schema
      .createIndex('task_plans_replaces_task_id')
      .unique()
      .on('task_plans')
      .column('replaces_task_id')
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('task_plans_replaces_task_id').ifExists().execute();
    await db.schema.alterTable('task_plans').dropColumn('replaces_task_id').execute();
  },
};
