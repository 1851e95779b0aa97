import { type Kysely, type Migration, sql } from 'kysely';
import { dialectOf } from '../database.js';

/** Width of a `task_costs` bucket per dimension: the day chart needs every quarter-hour time zone's midnight. */
export const COST_BUCKET_MS = { time: 900_000, project: 86_400_000, user: 86_400_000 } as const;
export type CostDimension = keyof typeof COST_BUCKET_MS;

/**
 * PostgreSQL spreads each time bucket over this many rows, as task_totals does (migration 008): every task
 * created in a quarter-hour writes its row. A project's or a user's row is written by that one's tasks only,
 * and stays one row, so a chart over many of them reads a row per key and day.
 */
const PG_SLOTS = 8;

/** The `task_costs` rows one task row adds to (sign 1) or takes from (sign -1), read from `row`. */
function contributions(row: string, sign: 1 | -1, pg: boolean): string[] {
  const key: Record<CostDimension, string> = {
    time: `''`,
    project: `${row}.project_id`,
    user: `${row}.user_id`,
  };
  return (Object.keys(COST_BUCKET_MS) as CostDimension[]).map((dim) => {
    const width = COST_BUCKET_MS[dim];
    const slot = pg && dim === 'time' ? `hashtext(${row}.id) & ${PG_SLOTS - 1}` : '0';
    return `'${dim}' AS dim, ${key[dim]} AS key, ${row}.created_at / ${width} * ${width} AS bucket, ${slot} AS slot,
      ${sign} AS tasks, ${sign === 1 ? '' : '-'}${row}.cost_usd AS cost_usd`;
  });
}

const COST_COLUMNS = 'dim, key, bucket, slot, tasks, cost_usd';
const COST_UPSERT = `ON CONFLICT (dim, bucket, key, slot) DO UPDATE SET
  tasks = task_costs.tasks + excluded.tasks, cost_usd = task_costs.cost_usd + excluded.cost_usd`;

/** A table's (or transition table's) rows as contributions, each counted with `sign`. */
const fromTable = (table: string, sign: 1 | -1, pg: boolean): string[] =>
  contributions('t', sign, pg).map((c) => `SELECT ${c} FROM ${table} t`);

/**
 * Contributions summed per counter row and added to `task_costs` in key order, so two transactions never take
 * the same counter rows in opposite order; what cancels out (an update that left them alone) writes nothing.
 */
function addCosts(rows: string[]): string {
  return `INSERT INTO task_costs (${COST_COLUMNS})
    SELECT dim, key, bucket, slot, sum(tasks), sum(cost_usd)
    FROM (${rows.join(' UNION ALL ')}) AS c
    GROUP BY dim, bucket, key, slot
    HAVING sum(tasks) <> 0 OR sum(cost_usd) <> 0
    ORDER BY dim, bucket, key, slot
    ${COST_UPSERT}`;
}

const sqliteCostUpserts = (row: 'NEW' | 'OLD', sign: 1 | -1) =>
  contributions(row, sign, false)
    .map((c) => `INSERT INTO task_costs (${COST_COLUMNS}) SELECT ${c} WHERE true ${COST_UPSERT};`)
    .join('\n');

/** The searchable text of a task, case-folded; PostgreSQL's trigram indexes are on exactly these expressions. */
export const SEARCHED_COLUMNS = ['prompt', 'result'] as const;

/**
 * The dashboard's reads over a large history, each answered from what it needs rather than from a scan:
 *
 * - Text search (`q`, a case-insensitive substring of the request or the result): on SQLite an FTS5 index
 *   with the trigram tokenizer (`task_search`, contentless), its documents numbered by `task_search_docs`
 *   so the index never depends on the tasks table's implicit rowid, which VACUUM may renumber; on
 *   PostgreSQL pg_trgm GIN indexes on lower(prompt) and lower(result), which LIKE uses as they are.
 * - Cost per day, project and user (`task_costs`): counts and sums per quarter-hour (time) or day (project,
 *   user) of creation, kept by triggers like task_totals, so every writer keeps them true.
 * - The number of archived tasks (`archive_totals`), kept the same way.
 * - A bot's page of tasks, in order from its own index.
 *
 * Building the text index reads every task once (about half a minute per million tasks on either engine).
 */
export const historyReads: Migration = {
  async up(db: Kysely<unknown>) {
    const pg = dialectOf(db) === 'postgres';

    await db.schema
      .createIndex('tasks_bot_created_idx')
      .on('tasks')
      .columns(['bot_name', 'created_at', 'id'])
      .execute();

    let costs = db.schema
      .createTable('task_costs')
      .addColumn('dim', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('bucket', 'bigint', (c) => c.notNull())
      .addColumn('slot', 'integer', (c) => c.notNull())
      .addColumn('tasks', 'bigint', (c) => c.notNull())
      .addColumn('cost_usd', 'double precision', (c) => c.notNull())
      .addPrimaryKeyConstraint('task_costs_pk', ['dim', 'bucket', 'key', 'slot']);
    if (!pg) costs = costs.modifyEnd(sql`without rowid`);
    await costs.execute();
    await db.schema
      .createTable('archive_totals')
      .addColumn('slot', 'integer', (c) => c.primaryKey())
      .addColumn('archives', 'bigint', (c) => c.notNull())
      .execute();

    await sql.raw(addCosts(fromTable('tasks', 1, pg))).execute(db);
    await sql
      .raw(
        pg
          ? `INSERT INTO archive_totals (slot, archives)
             SELECT hashtext(id) & ${PG_SLOTS - 1}, count(*) FROM archived_tasks GROUP BY 1`
          : 'INSERT INTO archive_totals (slot, archives) SELECT 0, count(*) FROM archived_tasks',
      )
      .execute(db);

    if (pg) await postgresUp(db);
    else await sqliteUp(db);
  },

  async down(db: Kysely<unknown>) {
    const pg = dialectOf(db) === 'postgres';
    if (pg) {
      for (const t of ['task_costs_insert', 'task_costs_delete', 'task_costs_update']) {
        await sql.raw(`DROP TRIGGER IF EXISTS ${t} ON tasks`).execute(db);
        await sql.raw(`DROP FUNCTION IF EXISTS ${t}()`).execute(db);
      }
      for (const t of ['archive_totals_insert', 'archive_totals_delete']) {
        await sql.raw(`DROP TRIGGER IF EXISTS ${t} ON archived_tasks`).execute(db);
        await sql.raw(`DROP FUNCTION IF EXISTS ${t}()`).execute(db);
      }
      // pg_trgm stays: the extension belongs to the whole database, and other schemas may use it.
      for (const column of SEARCHED_COLUMNS) {
        await db.schema.dropIndex(`tasks_${column}_trgm_idx`).ifExists().execute();
      }
    } else {
      for (const t of [
        'task_costs_insert',
        'task_costs_delete',
        'task_costs_update',
        'archive_totals_insert',
        'archive_totals_delete',
        'task_search_insert',
        'task_search_delete',
        'task_search_update',
      ]) {
        await sql.raw(`DROP TRIGGER IF EXISTS ${t}`).execute(db);
      }
      await sql.raw('DROP TABLE IF EXISTS task_search').execute(db);
      await db.schema.dropTable('task_search_docs').ifExists().execute();
    }
    await db.schema.dropTable('archive_totals').ifExists().execute();
    await db.schema.dropTable('task_costs').ifExists().execute();
    await db.schema.dropIndex('tasks_bot_created_idx').ifExists().execute();
  },
};

async function sqliteUp(db: Kysely<unknown>): Promise<void> {
  const changed = ['cost_usd', 'created_at', 'project_id', 'user_id'];
  await sql
    .raw(`CREATE TRIGGER task_costs_insert AFTER INSERT ON tasks BEGIN ${sqliteCostUpserts('NEW', 1)} END`)
    .execute(db);
  await sql
    .raw(`CREATE TRIGGER task_costs_delete AFTER DELETE ON tasks BEGIN ${sqliteCostUpserts('OLD', -1)} END`)
    .execute(db);
  await sql
    .raw(
      `CREATE TRIGGER task_costs_update AFTER UPDATE OF ${changed.join(', ')} ON tasks
       WHEN ${changed.map((c) => `OLD.${c} IS NOT NEW.${c}`).join(' OR ')}
       BEGIN ${sqliteCostUpserts('OLD', -1)} ${sqliteCostUpserts('NEW', 1)} END`,
    )
    .execute(db);
  const archives = (sign: 1 | -1) =>
    `INSERT INTO archive_totals (slot, archives) VALUES (0, ${sign})
     ON CONFLICT (slot) DO UPDATE SET archives = archive_totals.archives + excluded.archives;`;
  await sql
    .raw(`CREATE TRIGGER archive_totals_insert AFTER INSERT ON archived_tasks BEGIN ${archives(1)} END`)
    .execute(db);
  await sql
    .raw(`CREATE TRIGGER archive_totals_delete AFTER DELETE ON archived_tasks BEGIN ${archives(-1)} END`)
    .execute(db);

  // Documents are numbered in creation order; the number is the FTS rowid, the task id is found through it.
  await db.schema
    .createTable('task_search_docs')
    .addColumn('doc', 'integer', (c) => c.primaryKey())
    .addColumn('task_id', 'text', (c) => c.notNull().unique())
    .execute();
  await sql
    .raw(
      `CREATE VIRTUAL TABLE task_search USING fts5(${SEARCHED_COLUMNS.join(', ')},
         content='', contentless_delete=1, tokenize='trigram case_sensitive 0')`,
    )
    .execute(db);
  await sql
    .raw('INSERT INTO task_search_docs (task_id) SELECT id FROM tasks ORDER BY created_at, id')
    .execute(db);
  const values = (row: 'NEW' | 't') => SEARCHED_COLUMNS.map((c) => `${row}.${c}`).join(', ');
  await sql
    .raw(
      `INSERT INTO task_search (rowid, ${SEARCHED_COLUMNS.join(', ')})
       SELECT d.doc, ${values('t')} FROM task_search_docs d JOIN tasks t ON t.id = d.task_id`,
    )
    .execute(db);
  // Into one segment: a bulk build leaves several large ones, and every later write would merge a little of
  // them (tens of milliseconds every few dozen inserts, at a million tasks) until they were one.
  await sql.raw(`INSERT INTO task_search (task_search) VALUES ('optimize')`).execute(db);
  const index = `INSERT INTO task_search_docs (task_id) VALUES (NEW.id);
    INSERT INTO task_search (rowid, ${SEARCHED_COLUMNS.join(', ')})
    VALUES ((SELECT doc FROM task_search_docs WHERE task_id = NEW.id), ${values('NEW')});`;
  const unindex = `DELETE FROM task_search WHERE rowid = (SELECT doc FROM task_search_docs WHERE task_id = OLD.id);
    DELETE FROM task_search_docs WHERE task_id = OLD.id;`;
  await sql.raw(`CREATE TRIGGER task_search_insert AFTER INSERT ON tasks BEGIN ${index} END`).execute(db);
  await sql.raw(`CREATE TRIGGER task_search_delete AFTER DELETE ON tasks BEGIN ${unindex} END`).execute(db);
  const searched = ['id', ...SEARCHED_COLUMNS];
  await sql
    .raw(
      `CREATE TRIGGER task_search_update AFTER UPDATE OF ${searched.join(', ')} ON tasks
       WHEN ${searched.map((c) => `OLD.${c} IS NOT NEW.${c}`).join(' OR ')}
       BEGIN ${unindex} ${index} END`,
    )
    .execute(db);
}

async function postgresUp(db: Kysely<unknown>): Promise<void> {
  // Inserts and deletes through statement triggers over transition tables: a statement of many rows (a bulk
  // load, a retention batch) updates each counter row once. Updates row by row, and only those that change a
  // summed column: a statement trigger would run for every update of a task (each transition, most of which
  // leave these columns alone), several times the cost of the update itself.
  const statements: Array<[name: string, event: string, rows: string[]]> = [
    [
      'task_costs_insert',
      'INSERT ON tasks REFERENCING NEW TABLE AS new_rows',
      fromTable('new_rows', 1, true),
    ],
    [
      'task_costs_delete',
      'DELETE ON tasks REFERENCING OLD TABLE AS old_rows',
      fromTable('old_rows', -1, true),
    ],
  ];
  for (const [name, event, rows] of statements) {
    await sql
      .raw(
        `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN ${addCosts(rows)}; RETURN NULL; END $$`,
      )
      .execute(db);
    await sql
      .raw(`CREATE TRIGGER ${name} AFTER ${event} FOR EACH STATEMENT EXECUTE FUNCTION ${name}()`)
      .execute(db);
  }
  const changed = ['cost_usd', 'created_at', 'project_id', 'user_id'];
  const moved = [...contributions('OLD', -1, true), ...contributions('NEW', 1, true)].map(
    (c) => `SELECT ${c}`,
  );
  await sql
    .raw(
      `CREATE FUNCTION task_costs_update() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN ${addCosts(moved)}; RETURN NULL; END $$`,
    )
    .execute(db);
  await sql
    .raw(
      `CREATE TRIGGER task_costs_update AFTER UPDATE OF ${changed.join(', ')} ON tasks FOR EACH ROW
       WHEN (${changed.map((c) => `OLD.${c} IS DISTINCT FROM NEW.${c}`).join(' OR ')})
       EXECUTE FUNCTION task_costs_update()`,
    )
    .execute(db);
  const archives: Array<[name: string, event: string, rows: string, sign: 1 | -1]> = [
    ['archive_totals_insert', 'INSERT ON archived_tasks REFERENCING NEW TABLE AS new_rows', 'new_rows', 1],
    ['archive_totals_delete', 'DELETE ON archived_tasks REFERENCING OLD TABLE AS old_rows', 'old_rows', -1],
  ];
  for (const [name, event, rows, sign] of archives) {
    await sql
      .raw(
        `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           INSERT INTO archive_totals (slot, archives)
           SELECT hashtext(id) & ${PG_SLOTS - 1} AS s, ${sign} * count(*) FROM ${rows} GROUP BY s ORDER BY s
           ON CONFLICT (slot) DO UPDATE SET archives = archive_totals.archives + excluded.archives;
           RETURN NULL;
         END $$`,
      )
      .execute(db);
    await sql
      .raw(`CREATE TRIGGER ${name} AFTER ${event} FOR EACH STATEMENT EXECUTE FUNCTION ${name}()`)
      .execute(db);
  }

  // The extension is the database's, not a schema's: installed in public, where a schema dropped with its
  // tables (a test's, say) cannot take it along, and under a lock, as CREATE EXTENSION IF NOT EXISTS is not
  // safe against a concurrent one.
  await sql`select pg_advisory_xact_lock(hashtext('bematic.pg_trgm'))`.execute(db);
  await sql`create extension if not exists pg_trgm schema public`.execute(db);
  const { rows } = await sql<{ schema: string }>`
    select n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace
    where e.extname = 'pg_trgm'`.execute(db);
  const opclass = `"${(rows[0]?.schema ?? 'public').replaceAll('"', '""')}".gin_trgm_ops`;
  await sql`set local maintenance_work_mem = '256MB'`.execute(db);
  // Every update of a task (a transition changes an indexed column, so none is HOT) adds its trigrams again,
  // to the index's pending list; a search reads that list whole, and the write that fills it merges it. At
  // the default 4 MB that was 4-6 ms on every search and 150 ms in one write; at 512 kB, under a millisecond
  // and about 20 ms, while a bulk load still goes in through the list.
  for (const column of SEARCHED_COLUMNS) {
    await sql
      .raw(
        `CREATE INDEX tasks_${column}_trgm_idx ON tasks USING gin (lower(${column}) ${opclass})
         WITH (gin_pending_list_limit = 512)`,
      )
      .execute(db);
  }
  // The planner judges how common a searched word is from the statistics of these expressions, and reads
  // the new counters by their key.
  await sql`analyze tasks, task_costs`.execute(db);
}
