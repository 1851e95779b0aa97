import type { Kysely, Migration } from 'kysely';

/** Approvals a running task waits for, kept so a cloud restart can answer them instead of losing them. */
export const permissionRequests: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('permission_requests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer')
      .addColumn('tool', 'text', (c) => c.notNull())
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('decided_by', 'text')
      .addColumn('channel_id', 'text')
      .addColumn('message_ts', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('permission_requests_status_idx')
      .on('permission_requests')
      .columns(['status', 'expires_at'])
      .execute();
    await db.schema
      .createIndex('permission_requests_task_idx')
      .on('permission_requests')
      .column('task_id')
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('permission_requests').ifExists().execute();
  },
};
