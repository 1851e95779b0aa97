import { type ColumnDefinitionBuilder, type Kysely, type Migration, sql } from 'kysely';
import { dialectOf } from '../database.js';

/**
 * Portable DDL: every column type below means the same thing on SQLite and
 * PostgreSQL (see schema.ts). Only the auto-increment key differs.
 */
export const initial: Migration = {
  async up(db: Kysely<unknown>) {
    const pg = dialectOf(db) === 'postgres';
    const serialType = pg ? 'serial' : 'integer';
    const serialKey = (c: ColumnDefinitionBuilder) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement());

    await db.schema
      .createTable('projects')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('channel_id', 'text', (c) => c.notNull().unique())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('fallback_agent_ids', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('local_path', 'text', (c) => c.notNull())
      .addColumn('default_model', 'text')
      .addColumn('max_budget_usd', 'double precision')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    // No foreign key to projects: an archived task may be restored after its
    // project was removed, and the task row must still be readable.
    await db.schema
      .createTable('tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('bot_name', 'text', (c) => c.notNull())
      .addColumn('command', 'text', (c) => c.notNull())
      .addColumn('prompt', 'text', (c) => c.notNull())
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('priority', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('channel_id', 'text', (c) => c.notNull())
      .addColumn('thread_ts', 'text')
      .addColumn('message_ts', 'text')
      .addColumn('progress_message_ts', 'text')
      .addColumn('session_id', 'text')
      .addColumn('parent_task_id', 'text')
      .addColumn('submission', 'text', (c) => c.notNull())
      .addColumn('result', 'text')
      .addColumn('error_message', 'text')
      .addColumn('error_code', 'text')
      .addColumn('recoverable', 'integer')
      .addColumn('warning', 'text')
      .addColumn('files_changed', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('commands_run', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('input_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('output_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('cache_read_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('cache_creation_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('cost_usd', 'double precision', (c) => c.notNull().defaultTo(0))
      .addColumn('duration_ms', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('num_turns', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('continuations', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('restored_from_archive', 'text')
      .addColumn('restored_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('started_at', 'bigint')
      .addColumn('completed_at', 'bigint')
      .execute();
    await db.schema.createIndex('tasks_status_idx').on('tasks').column('status').execute();
    await db.schema
      .createIndex('tasks_agent_status_idx')
      .on('tasks')
      .columns(['agent_id', 'status'])
      .execute();
    await db.schema
      .createIndex('tasks_project_created_idx')
      .on('tasks')
      .columns(['project_id', 'created_at'])
      .execute();
    await db.schema
      .createIndex('tasks_thread_idx')
      .on('tasks')
      .columns(['channel_id', 'thread_ts'])
      .execute();
    await db.schema.createIndex('tasks_parent_idx').on('tasks').column('parent_task_id').execute();
    await db.schema.createIndex('tasks_created_idx').on('tasks').column('created_at').execute();

    await db.schema
      .createTable('sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id').onDelete('cascade'))
      .addColumn('claude_session_id', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('input_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('output_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('cost_usd', 'double precision', (c) => c.notNull().defaultTo(0))
      .addColumn('duration_ms', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('completed_at', 'bigint')
      .execute();
    await db.schema.createIndex('sessions_task_idx').on('sessions').column('task_id').execute();

    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text')
      .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'developer', 'viewer')`))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('audit_logs')
      .addColumn('id', serialType, serialKey)
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('resource_type', 'text')
      .addColumn('resource_id', 'text')
      .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createIndex('audit_logs_resource_idx').on('audit_logs').column('resource_id').execute();
    await db.schema
      .createIndex('audit_logs_action_ts_idx')
      .on('audit_logs')
      .columns(['action', 'ts'])
      .execute();

    await db.schema
      .createTable('offline_queue')
      .addColumn('id', serialType, serialKey)
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('task_id', 'text', (c) => c.notNull().unique())
      .addColumn('priority', 'text', (c) => c.notNull())
      .addColumn('priority_rank', 'integer', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('enqueued_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('last_attempt_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('offline_queue_agent_order_idx')
      .on('offline_queue')
      .columns(['agent_id', 'priority_rank', 'enqueued_at'])
      .execute();
    await db.schema
      .createIndex('offline_queue_expires_idx')
      .on('offline_queue')
      .column('expires_at')
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('prefix', 'text', (c) => c.notNull())
      .addColumn('key_hash', 'text', (c) => c.notNull().unique())
      .addColumn('label', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .execute();
    await db.schema.createIndex('api_keys_prefix_idx').on('api_keys').column('prefix').execute();
    await db.schema.createIndex('api_keys_agent_idx').on('api_keys').column('agent_id').execute();

    await db.schema
      .createTable('archived_tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('original_id', 'text', (c) => c.notNull())
      .addColumn('task_data', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('archived_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('archived_tasks_original_idx')
      .on('archived_tasks')
      .column('original_id')
      .execute();
    await db.schema
      .createIndex('archived_tasks_archived_at_idx')
      .on('archived_tasks')
      .column('archived_at')
      .execute();

    await db.schema
      .createTable('agents')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('hostname', 'text')
      .addColumn('version', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('last_seen_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
  },

  async down(db: Kysely<unknown>) {
    for (const table of [
      'agents',
      'archived_tasks',
      'api_keys',
      'offline_queue',
      'audit_logs',
      'users',
      'sessions',
      'tasks',
      'projects',
    ]) {
      await db.schema.dropTable(table).ifExists().execute();
    }
  },
};
