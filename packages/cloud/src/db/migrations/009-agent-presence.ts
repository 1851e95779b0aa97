import type { Kysely, Migration } from 'kysely';

/** Which cloud instance holds each agent's socket, so instances and the leader know where an agent is. */
export const agentPresence: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('agents').addColumn('instance_id', 'text').execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('agents').dropColumn('instance_id').execute();
  },
};
