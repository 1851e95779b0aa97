import type { ColumnDefinitionBuilder, Kysely, Migration } from 'kysely';
import { dialectOf } from '../database.js';

/**
 * What the dashboard shows after the fact: each task's transcript (the steps
 * and text the agent streamed) and the web console's conversations, which
 * until now lived in memory only.
 */
export const dashboard: Migration = {
  async up(db: Kysely<unknown>) {
    const pg = dialectOf(db) === 'postgres';
    const serialType = pg ? 'serial' : 'integer';
    const serialKey = (c: ColumnDefinitionBuilder) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement());

    await db.schema
      .createTable('task_steps')
      .addColumn('id', serialType, serialKey)
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('tool', 'text')
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('detail', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('task_steps_task_idx').on('task_steps').columns(['task_id', 'id']).execute();

    await db.schema
      .createTable('console_messages')
      .addColumn('ts', 'text', (c) => c.primaryKey())
      .addColumn('channel_id', 'text', (c) => c.notNull())
      .addColumn('thread_ts', 'text')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('text', 'text', (c) => c.notNull())
      .addColumn('blocks', 'text')
      .addColumn('reactions', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('visible_to', 'text')
      .addColumn('posted_at', 'bigint', (c) => c.notNull())
      .addColumn('edited_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('console_messages_thread_idx')
      .on('console_messages')
      .columns(['channel_id', 'thread_ts', 'ts'])
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('console_messages').ifExists().execute();
    await db.schema.dropTable('task_steps').ifExists().execute();
  },
};
