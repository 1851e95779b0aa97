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

/** A dashboard or API read, and the index each statement it runs must use. */
interface HotQuery {
  name: string;
  run(r: Repositories): Promise<unknown>;
  index: string;
  /** A page in (created_at, id) order: the index must deliver that order, no sort. */
  ordered?: boolean;
}

const CURSOR = { createdAt: 1_700_000_000_000, id: 'task_x' };

const HOT: HotQuery[] = [
  {
    name: 'first page',
    run: (r) => r.taskSearch.search({ limit: 51 }),
    index: 'tasks_created_id_idx',
    ordered: true,
  },
  {
    name: 'deep page',
    run: (r) => r.taskSearch.search({ limit: 51, before: CURSOR }),
    index: 'tasks_created_id_idx',
    ordered: true,
  },
  {
    name: 'page of one status',
    run: (r) => r.taskSearch.search({ limit: 51, status: ['running'], before: CURSOR }),
    index: 'tasks_status_created_idx',
    ordered: true,
  },
  {
    name: 'page of several statuses',
    run: (r) => r.taskSearch.search({ limit: 51, status: ['completed', 'failed'], before: CURSOR }),
    index: 'tasks_status_created_idx',
    ordered: true,
  },
  {
    name: 'page of a project',
    run: (r) => r.taskSearch.search({ limit: 51, projectId: 'proj_a', before: CURSOR }),
    index: 'tasks_project_created_idx',
    ordered: true,
  },
  {
    name: 'page of a user',
    run: (r) => r.taskSearch.search({ limit: 51, userId: 'U1' }),
    index: 'tasks_user_created_idx',
    ordered: true,
  },
  {
    name: 'page of a bot',
    run: (r) => r.taskSearch.search({ limit: 51, botName: 'coder' }),
    index: 'tasks_created_id_idx',
    ordered: true,
  },
  {
    name: 'cost per day',
    run: (r) => r.taskSearch.costs('day', CURSOR.createdAt, 60),
    index: 'tasks_created_id_idx',
  },
  {
    name: 'cost per project',
    run: (r) => r.taskSearch.costs('project', CURSOR.createdAt),
    index: 'tasks_created_id_idx',
  },
  {
    name: 'cost per user',
    run: (r) => r.taskSearch.costs('user', CURSOR.createdAt),
    index: 'tasks_created_id_idx',
  },
  {
    name: 'audit, newest',
    run: (r) => r.audit.list({ limit: 100 }),
    index: 'audit_logs_ts_idx',
    ordered: true,
  },
  {
    name: 'audit of a task',
    run: (r) => r.audit.list({ resourceId: 'task_x', limit: 500 }),
    index: 'audit_logs_resource_ts_idx',
    ordered: true,
  },
  { name: 'transcript', run: (r) => r.taskSteps.list('task_x'), index: 'task_steps_task_idx' },
  {
    name: 'console thread, back in memory',
    run: (r) => r.consoleMessages.replies('console:web', '1700000000.000001', 50),
    index: 'console_messages_thread_idx',
  },
  {
    name: 'agents, first page',
    run: (r) => r.agents.page({ limit: 100 }),
    index: 'agents_status_id_idx',
    ordered: true,
  },
  {
    name: 'agents, deep page',
    run: (r) => r.agents.page({ limit: 100, after: { online: false, id: 'agent_x' } }),
    index: 'agents_status_id_idx',
    ordered: true,
  },
  {
    name: 'agents, online only, deep',
    run: (r) => r.agents.page({ limit: 100, status: 'online', after: { online: true, id: 'agent_x' } }),
    index: 'agents_status_id_idx',
    ordered: true,
  },
  {
    name: 'agents, text',
    run: (r) => r.agents.page({ limit: 100, text: 'build', after: { online: true, id: 'agent_x' } }),
    index: 'agents_status_id_idx',
    ordered: true,
  },
  { name: 'agents, counts', run: (r) => r.agents.counts(), index: 'agents_status_id_idx' },
  {
    name: 'outbox safety sweep',
    run: (r) => r.offlineQueue.listUnsent(['agent_a', 'agent_b'], CURSOR.createdAt),
    index: 'offline_queue_agent_order_idx',
  },
  {
    name: 'queued tasks of a page of agents',
    run: (r) => r.offlineQueue.countByAgent(['agent_a', 'agent_b']),
    index: 'offline_queue_agent_order_idx',
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

function describePlans(name: string, open: (onQuery: (s: Captured) => void) => Promise<Database>): void {
  describe(`query plans: ${name}`, () => {
    const captured: Captured[] = [];
    let database: Database;
    beforeAll(async () => {
      database = await open((s) => captured.push(s));
      await migrateToLatest(database);
    });
    afterAll(async () => {
      await database?.close();
    });

    for (const q of HOT) {
      it(`${q.name} reads ${q.index}${q.ordered ? ' in order' : ''}`, async () => {
        const run = await statements(database, captured, q);
        expect(run.length).toBeGreaterThan(0);
        for (const s of run) {
          const plan =
            database.dialect === 'postgres'
              ? await explainPostgres(database, s)
              : await explainSqlite(database, s);
          expect(plan.text).toContain(q.index);
          expect(plan.text).not.toMatch(
            /^(SCAN (tasks|audit_logs|task_steps|agents|offline_queue)$|Seq Scan)/m,
          );
          if (q.ordered) expect(plan.sorts, plan.text).toBe(false);
        }
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
