import type { Kysely, Migration } from 'kysely';

/**
 * What routing on any instance needs to know about an agent another instance holds: whether it can take work
 * now (`health`, a code) and how full it is, as its holder last saw it (written with the presence claim).
 */
export const agentHealth: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('agents').addColumn('health', 'text').execute();
    await db.schema.alterTable('agents').addColumn('active_tasks', 'integer').execute();
    await db.schema.alterTable('agents').addColumn('max_concurrent_tasks', 'integer').execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('agents').dropColumn('max_concurrent_tasks').execute();
    await db.schema.alterTable('agents').dropColumn('active_tasks').execute();
    await db.schema.alterTable('agents').dropColumn('health').execute();
  },
};
