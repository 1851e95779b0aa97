import { randomUUID } from 'node:crypto';
import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations/index.js';
import { createRepositories } from '../../src/db/repositories/index.js';
import type { Repositories } from '../../src/db/repositories/types.js';

interface Captured {
  sql: string;
  parameters: readonly unknown[];
}

/** A dashboard or API read, and the indexes the statements it runs must use. */
interface HotQuery {
  name: string;
  run(r: Repositories): Promise<unknown>;
  /** Each appears in the plan of one of its statements (SQLite names a WITHOUT ROWID table's key PRIMARY KEY). */
  uses: RegExp[];
  /** A page in (created_at, id) order: the index must deliver that order, no sort. */
  ordered?: boolean;
}

const CURSOR = { createdAt: 1_700_000_000_000, id: 'task_x' };

const HOT: HotQuery[] = [
  {
    name: 'first page',
    run: (r) => r.taskSearch.search({ limit: 51 }),
    uses: [/tasks_created_id_idx/],
    ordered: true,
  },
  {
    name: 'deep page',
    run: (r) => r.taskSearch.search({ limit: 51, before: CURSOR }),
    uses: [/tasks_created_id_idx/],
    ordered: true,
  },
  {
    name: 'page of one status',
    run: (r) => r.taskSearch.search({ limit: 51, status: ['running'], before: CURSOR }),
    uses: [/tasks_status_created_idx/],
    ordered: true,
  },
  {
    name: 'page of several statuses',
    run: (r) => r.taskSearch.search({ limit: 51, status: ['completed', 'failed'], before: CURSOR }),
    uses: [/tasks_status_created_idx/],
    ordered: true,
  },
  {
    name: 'page of a project',
    run: (r) => r.taskSearch.search({ limit: 51, projectId: 'proj_a', before: CURSOR }),
    uses: [/tasks_project_created_idx/],
    ordered: true,
  },
  {
    name: 'page of a user',
    run: (r) => r.taskSearch.search({ limit: 51, userId: 'U1' }),
    uses: [/tasks_user_created_idx/],
    ordered: true,
  },
  {
    name: 'page of a bot',
    run: (r) => r.taskSearch.search({ limit: 51, botName: 'coder' }),
    uses: [/tasks_bot_created_idx/],
    ordered: true,
  },
  {
    name: 'cost per day',
    run: (r) => r.taskSearch.costs('day', CURSOR.createdAt, 60),
    uses: [/task_costs_pk|SEARCH task_costs USING PRIMARY KEY/, /tasks_created_id_idx/],
  },
  {
    name: 'cost per project',
    run: (r) => r.taskSearch.costs('project', CURSOR.createdAt),
    uses: [/task_costs_pk|SEARCH task_costs USING PRIMARY KEY/, /tasks_created_id_idx/],
  },
  {
    name: 'cost per user',
    run: (r) => r.taskSearch.costs('user', CURSOR.createdAt),
    uses: [/task_costs_pk|SEARCH task_costs USING PRIMARY KEY/, /tasks_created_id_idx/],
  },
  {
    name: 'audit, newest',
    run: (r) => r.audit.list({ limit: 100 }),
    uses: [/audit_logs_ts_idx/],
    ordered: true,
  },
  {
    name: 'audit of a task',
    run: (r) => r.audit.list({ resourceId: 'task_x', limit: 500 }),
    uses: [/audit_logs_resource_ts_idx/],
    ordered: true,
  },
  { name: 'transcript', run: (r) => r.taskSteps.list('task_x'), uses: [/task_steps_task_idx/] },
  {
    name: 'text search',
    // No task has this id, and the first window of newest rows holds no match: the text index is asked.
    run: (r) => r.taskSearch.search({ limit: 51, text: 'rare words' }),
    uses: [
      /task_search VIRTUAL TABLE INDEX 0:M|tasks_prompt_trgm_idx/,
      /tasks_pkey|sqlite_autoindex_tasks_1/,
    ],
  },
  {
    name: 'archived count',
    run: (r) => r.archivedTasks.count(),
    uses: [/archive_totals/],
  },
  {
    name: 'console thread, back in memory',
    run: (r) => r.consoleMessages.replies('console:web', '1700000000.000001', 50),
    uses: [/console_messages_thread_idx/],
  },
  {
    name: 'agents, first page',
    run: (r) => r.agents.page({ limit: 100 }),
    uses: [/agents_status_id_idx/],
    ordered: true,
  },
  {
    name: 'agents, deep page',
    run: (r) => r.agents.page({ limit: 100, after: { online: false, id: 'agent_x' } }),
    uses: [/agents_status_id_idx/],
    ordered: true,
  },
  {
    name: 'agents, online only, deep',
    run: (r) => r.agents.page({ limit: 100, status: 'online', after: { online: true, id: 'agent_x' } }),
    uses: [/agents_status_id_idx/],
    ordered: true,
  },
  {
    name: 'agents, text',
    run: (r) => r.agents.page({ limit: 100, text: 'build', after: { online: true, id: 'agent_x' } }),
    uses: [/agents_status_id_idx/],
    ordered: true,
  },
  { name: 'agents, counts', run: (r) => r.agents.counts(), uses: [/agents_status_id_idx/] },
  {
    name: 'outbox safety sweep',
    run: (r) => r.offlineQueue.listUnsent(['agent_a', 'agent_b'], CURSOR.createdAt),
    uses: [/offline_queue_agent_order_idx/],
  },
  {
    name: 'queued tasks of a page of agents',
    run: (r) => r.offlineQueue.countByAgent(['agent_a', 'agent_b']),
    uses: [/offline_queue_agent_order_idx/],
  },
];

/** Every statement a call runs, captured through the query log, as the running cloud would send it. */
async function statements(database: Database, captured: Captured[], q: HotQuery): Promise<Captured[]> {
  captured.length = 0;
  await q.run(createRepositories(database.db));
  return [...captured];
}

async function explainSqlite(database: Database, s: Captured): Promise<{ text: string; sorts: boolean }> {
  const res = await database.db.executeQuery<{ detail: string }>(
    CompiledQuery.raw(`EXPLAIN QUERY PLAN ${s.sql}`, [...s.parameters]),
  );
  const details = res.rows.map((r) => r.detail);
  return { text: details.join('\n'), sorts: details.some((d) => d.includes('TEMP B-TREE FOR ORDER BY')) };
}

interface PgPlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  Plans?: PgPlanNode[];
}

async function explainPostgres(database: Database, s: Captured): Promise<{ text: string; sorts: boolean }> {
  // On a near-empty table the planner rightly prefers a sequential scan; with
  // scans and sorts priced out, a plan that still contains one has no index to use.
  return database.db.transaction().execute(async (trx) => {
    await sql`set local enable_seqscan = off`.execute(trx);
    await sql`set local enable_sort = off`.execute(trx);
    const res = await trx.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PgPlanNode }> }>(
      CompiledQuery.raw(`EXPLAIN (FORMAT JSON) ${s.sql}`, [...s.parameters]),
    );
    const nodes: PgPlanNode[] = [];
    const walk = (n: PgPlanNode) => {
      nodes.push(n);
      for (const c of n.Plans ?? []) walk(c);
    };
    for (const p of res.rows[0]?.['QUERY PLAN'] ?? []) walk(p.Plan);
    const text = nodes
      .map((n) => `${n['Node Type']} ${n['Index Name'] ?? ''} ${n['Relation Name'] ?? ''}`.trim())
      .join('\n');
    return {
      text,
      sorts: nodes.some((n) => n['Node Type'] === 'Sort' || n['Node Type'] === 'Incremental Sort'),
    };
  });
}

/**
 * A small history (no row holds the searched words): enough that a text search looks past its first window
 * of newest rows, and that PostgreSQL, given statistics, weighs real choices rather than ties between empty
 * indexes.
 */
async function seedHistory(database: Database): Promise<void> {
  const n = 2000;
  const rows = sql`select 'task_p' || i as id, 'proj_' || (i % 7) as project_id, 'agent_1' as agent_id,
    case when i % 4 = 0 then 'reviewer' else 'coder' end as bot_name, 'code' as command,
    'tidy module ' || i as prompt, 'm' as model, 'normal' as priority,
    case when i % 10 = 0 then 'failed' else 'completed' end as status, 'U' || (i % 13) as user_id,
    'C1' as channel_id, '{}' as submission, ${sql.lit(CURSOR.createdAt)} - i * 60000 as created_at,
    ${sql.lit(CURSOR.createdAt)} - i * 60000 as updated_at`;
  const columns = sql.raw(
    'id, project_id, agent_id, bot_name, command, prompt, model, priority, status, user_id, channel_id, ' +
      'submission, created_at, updated_at',
  );
  if (database.dialect === 'postgres') {
    await sql`insert into tasks (${columns}) ${rows} from generate_series(1, ${n}) as s(i)`.execute(
      database.db,
    );
    await sql`analyze`.execute(database.db);
  } else {
    await sql`insert into tasks (${columns}) with recursive s(i) as (select 1 union all select i + 1 from s
      where i < ${n}) ${rows} from s`.execute(database.db);
  }
}

function describePlans(name: string, open: (onQuery: (s: Captured) => void) => Promise<Database>): void {
  describe(`query plans: ${name}`, () => {
    const captured: Captured[] = [];
    let database: Database;
    beforeAll(async () => {
      database = await open((s) => captured.push(s));
      await migrateToLatest(database);
      await seedHistory(database);
    });
    afterAll(async () => {
      await database?.close();
    });

    for (const q of HOT) {
      it(`${q.name} reads ${q.uses.map((u) => u.source).join(', ')}${q.ordered ? ' in order' : ''}`, async () => {
        const run = await statements(database, captured, q);
        expect(run.length).toBeGreaterThan(0);
        const plans: string[] = [];
        for (const s of run) {
          const plan =
            database.dialect === 'postgres'
              ? await explainPostgres(database, s)
              : await explainSqlite(database, s);
          plans.push(plan.text);
          // The history's tables are never read whole; the totals' counters are a few rows by design.
          expect(plan.text).not.toMatch(
            /^(SCAN |Seq Scan\s+)(tasks|audit_logs|task_steps|task_costs|archived_tasks|agents|offline_queue|console_messages)$/m,
          );
          if (q.ordered) expect(plan.sorts, plan.text).toBe(false);
        }
        for (const use of q.uses) expect(plans.join('\n---\n')).toMatch(use);
      });
    }
  });
}

describePlans('SQLite', (onQuery) =>
  createDatabase('sqlite::memory:', {
    onQuery: (e) => onQuery({ sql: e.query.sql, parameters: e.query.parameters }),
  }),
);

const postgresUrl = process.env.BEMATIC_TEST_POSTGRES_URL;
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  describePlans('PostgreSQL', async (onQuery) => {
    const schema = `bematic_plans_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const database = await createDatabase(postgresUrl ?? '', {
      schema,
      onQuery: (e) => onQuery({ sql: e.query.sql, parameters: e.query.parameters }),
    });
    return {
      ...database,
      close: async () => {
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(database.db);
        await database.close();
      },
    };
  });
});
