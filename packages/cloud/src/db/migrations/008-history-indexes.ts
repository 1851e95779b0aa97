import { type Kysely, type Migration, sql } from 'kysely';
import { dialectOf } from '../database.js';

/**
 * The columns `task_totals` sums. The database maintains them with triggers,
 * so every writer (lifecycle, retention, restore, another cloud instance) keeps
 * them true and `/api/stats` reads a handful of rows instead of the history.
 */
const SUMS = [
  'cost_usd',
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_creation_tokens',
  'duration_ms',
] as const;

/** PostgreSQL spreads each (status, bot) over this many rows, so concurrent transitions rarely wait on one. */
const PG_SLOTS = 8;

const SQLITE_UPSERT = (row: 'NEW' | 'OLD', sign: 1 | -1) => `
  INSERT INTO task_totals (status, bot_name, slot, tasks, ${SUMS.join(', ')})
  VALUES (${row}.status, ${row}.bot_name, 0, ${sign}, ${SUMS.map((c) => `${sign === 1 ? '' : '-'}${row}.${c}`).join(', ')})
  ON CONFLICT (status, bot_name, slot) DO UPDATE SET
    tasks = task_totals.tasks + excluded.tasks, ${SUMS.map((c) => `${c} = task_totals.${c} + excluded.${c}`).join(', ')};`;

const PG_APPLY = (row: 'NEW' | 'OLD', sign: 1 | -1) =>
  `PERFORM task_totals_apply(${row}.status, ${row}.bot_name, hashtext(${row}.id) & ${PG_SLOTS - 1}, ${sign}, ${SUMS.map(
    (c) => `${sign === 1 ? '' : '-'}${row}.${c}`,
  ).join(', ')});`;

export const historyIndexes: Migration = {
  async up(db: Kysely<unknown>) {
    const pg = dialectOf(db) === 'postgres';

    // Keyset pages are ordered by (created_at, id); with the tie-breaker in the
    // index no page sorts, and the cost chart reads its columns from the index alone.
    await db.schema.dropIndex('tasks_created_idx').execute();
    await db.schema.dropIndex('tasks_status_idx').execute();
    await db.schema.dropIndex('tasks_project_created_idx').execute();
    await db.schema
      .createIndex('tasks_created_id_idx')
      .on('tasks')
      .columns(['created_at', 'id', 'cost_usd', 'project_id', 'user_id'])
      .execute();
    await db.schema
      .createIndex('tasks_status_created_idx')
      .on('tasks')
      .columns(['status', 'created_at', 'id'])
      .execute();
    await db.schema
      .createIndex('tasks_project_created_idx')
      .on('tasks')
      .columns(['project_id', 'created_at', 'id'])
      .execute();
    await db.schema
      .createIndex('tasks_user_created_idx')
      .on('tasks')
      .columns(['user_id', 'created_at', 'id'])
      .execute();

    // GET /api/audit without a filter is the newest entries: walk them in order instead of sorting the log.
    await db.schema.createIndex('audit_logs_ts_idx').on('audit_logs').columns(['ts', 'id']).execute();
    // A task page's audit trail, already in order.
    await db.schema.dropIndex('audit_logs_resource_idx').execute();
    await db.schema
      .createIndex('audit_logs_resource_ts_idx')
      .on('audit_logs')
      .columns(['resource_id', 'ts', 'id'])
      .execute();

    await db.schema
      .createTable('task_totals')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('bot_name', 'text', (c) => c.notNull())
      .addColumn('slot', 'integer', (c) => c.notNull())
      .addColumn('tasks', 'bigint', (c) => c.notNull())
      .addColumn('cost_usd', 'double precision', (c) => c.notNull())
      .addColumn('input_tokens', 'bigint', (c) => c.notNull())
      .addColumn('output_tokens', 'bigint', (c) => c.notNull())
      .addColumn('cache_read_tokens', 'bigint', (c) => c.notNull())
      .addColumn('cache_creation_tokens', 'bigint', (c) => c.notNull())
      .addColumn('duration_ms', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('task_totals_pk', ['status', 'bot_name', 'slot'])
      .execute();

    const slot = pg ? `hashtext(id) & ${PG_SLOTS - 1}` : '0';
    await sql
      .raw(
        `INSERT INTO task_totals (status, bot_name, slot, tasks, ${SUMS.join(', ')})
         SELECT status, bot_name, ${slot}, count(*), ${SUMS.map((c) => `sum(${c})`).join(', ')}
         FROM tasks GROUP BY status, bot_name${pg ? `, ${slot}` : ''}`,
      )
      .execute(db);

    const changed = ['status', 'bot_name', ...SUMS].join(', ');
    if (!pg) {
      await sql
        .raw(`CREATE TRIGGER task_totals_insert AFTER INSERT ON tasks BEGIN ${SQLITE_UPSERT('NEW', 1)} END`)
        .execute(db);
      await sql
        .raw(`CREATE TRIGGER task_totals_delete AFTER DELETE ON tasks BEGIN ${SQLITE_UPSERT('OLD', -1)} END`)
        .execute(db);
      await sql
        .raw(
          `CREATE TRIGGER task_totals_update AFTER UPDATE OF ${changed} ON tasks BEGIN
             ${SQLITE_UPSERT('OLD', -1)} ${SQLITE_UPSERT('NEW', 1)} END`,
        )
        .execute(db);
      return;
    }
    await sql
      .raw(
        `CREATE FUNCTION task_totals_apply(p_status text, p_bot text, p_slot integer, p_tasks bigint,
           ${SUMS.map((c) => `p_${c} ${c === 'cost_usd' ? 'double precision' : 'bigint'}`).join(', ')})
         RETURNS void LANGUAGE sql AS $$
           INSERT INTO task_totals (status, bot_name, slot, tasks, ${SUMS.join(', ')})
           VALUES (p_status, p_bot, p_slot, p_tasks, ${SUMS.map((c) => `p_${c}`).join(', ')})
           ON CONFLICT (status, bot_name, slot) DO UPDATE SET
             tasks = task_totals.tasks + excluded.tasks,
             ${SUMS.map((c) => `${c} = task_totals.${c} + excluded.${c}`).join(', ')}
         $$`,
      )
      .execute(db);
    // An update touches two counter rows; taking them in key order means two
    // transactions moving tasks in opposite directions cannot deadlock.
    await sql
      .raw(
        `CREATE FUNCTION task_totals_track() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_OP = 'INSERT' THEN
             ${PG_APPLY('NEW', 1)}
           ELSIF TG_OP = 'DELETE' THEN
             ${PG_APPLY('OLD', -1)}
           ELSIF (OLD.status, OLD.bot_name) <= (NEW.status, NEW.bot_name) THEN
             ${PG_APPLY('OLD', -1)}
             ${PG_APPLY('NEW', 1)}
           ELSE
             ${PG_APPLY('NEW', 1)}
             ${PG_APPLY('OLD', -1)}
           END IF;
           RETURN NULL;
         END $$`,
      )
      .execute(db);
    await sql
      .raw(
        `CREATE TRIGGER task_totals_track AFTER INSERT OR DELETE OR UPDATE OF ${changed} ON tasks
         FOR EACH ROW EXECUTE FUNCTION task_totals_track()`,
      )
      .execute(db);
  },

  async down(db: Kysely<unknown>) {
    const pg = dialectOf(db) === 'postgres';
    if (pg) {
      await sql.raw('DROP TRIGGER IF EXISTS task_totals_track ON tasks').execute(db);
      await sql.raw('DROP FUNCTION IF EXISTS task_totals_track()').execute(db);
      await sql.raw('DROP FUNCTION IF EXISTS task_totals_apply').execute(db);
    } else {
      for (const t of ['task_totals_insert', 'task_totals_delete', 'task_totals_update']) {
        await sql.raw(`DROP TRIGGER IF EXISTS ${t}`).execute(db);
      }
    }
    await db.schema.dropTable('task_totals').ifExists().execute();
    for (const i of [
      'audit_logs_ts_idx',
      'audit_logs_resource_ts_idx',
      'tasks_created_id_idx',
      'tasks_status_created_idx',
      'tasks_project_created_idx',
      'tasks_user_created_idx',
    ]) {
      await db.schema.dropIndex(i).ifExists().execute();
    }
    await db.schema.createIndex('audit_logs_resource_idx').on('audit_logs').column('resource_id').execute();
    await db.schema.createIndex('tasks_status_idx').on('tasks').column('status').execute();
    await db.schema
      .createIndex('tasks_project_created_idx')
      .on('tasks')
      .columns(['project_id', 'created_at'])
      .execute();
    await db.schema.createIndex('tasks_created_idx').on('tasks').column('created_at').execute();
  },
};
