import type { Kysely, Migration } from 'kysely';

/**
 * Plain words go to the channel's default bot; a person's direct messages to the app work against
 * their default project.
 */
export const chatDefaults: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('projects')
      .addColumn('default_bot', 'text', (c) => c.notNull().defaultTo('coder'))
      .execute();
    await db.schema.alterTable('users').addColumn('default_project_id', 'text').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('users').dropColumn('default_project_id').execute();
    await db.schema.alterTable('projects').dropColumn('default_bot').execute();
  },
};
