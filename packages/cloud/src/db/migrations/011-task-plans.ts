import type { Kysely, Migration } from 'kysely';

/**
 * A decomposed request's plan, keyed by its planning task: the command the person asked for (each subtask
 * runs as it unless the plan names another), the steps as approved or edited, where it is shown, and
 * where it stands (planning → proposed → running → done | cancelled).
 */
export const taskPlans: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('task_plans')
      .addColumn('task_id', 'text', (c) => c.primaryKey())
      .addColumn('original_command', 'text', (c) => c.notNull())
      .addColumn('steps', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('task_plans').ifExists().execute();
  },
};
