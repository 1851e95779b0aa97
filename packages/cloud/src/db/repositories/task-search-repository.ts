import { TASK_STATUSES, type TaskStatus } from '@bematic/protocol';
import { type Kysely, sql } from 'kysely';
import type { Schema } from '../schema.js';
import { toTask } from './task-repository.js';
import type { CostBucket, Task, TaskSearch, TaskSearchRepository, TaskTotals } from './types.js';

const DAY_MS = 86_400_000;

/** The dashboard's reads over the tasks table: filtered keyset pages and cost totals. */
export class KyselyTaskSearchRepository implements TaskSearchRepository {
  constructor(private readonly db: Kysely<Schema>) {}

  async search(q: TaskSearch): Promise<Task[]> {
    const statuses = [...new Set(q.status ?? [])];
    if (statuses.length > 1) {
      // One ordered index range per status, merged here: `status in (…)` over the
      // (status, created_at, id) index would sort every matching row of the history.
      const pages = await Promise.all(statuses.map((status) => this.search({ ...q, status: [status] })));
      return pages
        .flat()
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
        .slice(0, q.limit);
    }
    let query = this.db.selectFrom('tasks').selectAll();
    if (statuses[0] !== undefined) query = query.where('status', '=', statuses[0]);
    if (q.projectId !== undefined) query = query.where('project_id', '=', q.projectId);
    if (q.userId !== undefined) query = query.where('user_id', '=', q.userId);
    if (q.botName !== undefined) query = query.where('bot_name', '=', q.botName);
    if (q.from !== undefined) query = query.where('created_at', '>=', q.from);
    if (q.to !== undefined) query = query.where('created_at', '<', q.to);
    if (q.text) {
      const pattern = `%${q.text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query = query.where(
        sql<boolean>`(lower(prompt) like ${pattern} escape '\\' or lower(coalesce(result, '')) like ${pattern} escape '\\' or id = ${q.text})`,
      );
    }
    if (q.before) {
      const { createdAt, id } = q.before;
      // The `<=` bound is what lets both engines start the index scan at the cursor.
      query = query
        .where('created_at', '<=', createdAt)
        .where((eb) => eb.or([eb('created_at', '<', createdAt), eb('id', '<', id)]));
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute();
    return rows.map(toTask);
  }

  async costs(by: 'day' | 'project' | 'user', since: number, tzOffsetMinutes = 0): Promise<CostBucket[]> {
    if (by === 'day') {
      const offset = tzOffsetMinutes * 60_000;
      // Whole days since the epoch in the viewer's time zone; integer division on both engines.
      const day = sql<number>`(created_at - ${sql.lit(offset)}) / ${sql.lit(DAY_MS)}`;
      const rows = await this.db
        .selectFrom('tasks')
        .select([day.as('day'), sql<number>`sum(cost_usd)`.as('cost'), sql<number>`count(*)`.as('n')])
        .where('created_at', '>=', since)
        .groupBy(day)
        .execute();
      const buckets = new Map<string, CostBucket>();
      const dayKey = (ms: number) => new Date(ms - offset).toISOString().slice(0, 10);
      for (let t = since; t <= Date.now(); t += DAY_MS) {
        const key = dayKey(t);
        buckets.set(key, { key, costUsd: 0, tasks: 0 });
      }
      for (const r of rows) {
        const key = new Date(Number(r.day) * DAY_MS).toISOString().slice(0, 10);
        const b = buckets.get(key) ?? { key, costUsd: 0, tasks: 0 };
        b.costUsd += Number(r.cost);
        b.tasks += Number(r.n);
        buckets.set(key, b);
      }
      return [...buckets.values()].sort((a, b) => a.key.localeCompare(b.key)).map(round);
    }
    // Grouping by an expression rather than the bare column keeps the planner on the
    // created_at range of the covering index instead of walking the whole project/user index.
    const key = sql<string>`${sql.ref(by === 'project' ? 'project_id' : 'user_id')} || ''`;
    const rows = await this.db
      .selectFrom('tasks')
      .select([key.as('key'), sql<number>`sum(cost_usd)`.as('cost'), sql<number>`count(*)`.as('n')])
      .where('created_at', '>=', since)
      .groupBy(key)
      .execute();
    return rows
      .map((r) => round({ key: r.key, costUsd: Number(r.cost), tasks: Number(r.n) }))
      .sort((a, b) => b.costUsd - a.costUsd)
      .slice(0, 12);
  }

  async totals(): Promise<TaskTotals[]> {
    const rows = await this.db
      .selectFrom('task_totals')
      .select([
        'status',
        'bot_name',
        sql<number>`sum(tasks)`.as('tasks'),
        sql<number>`sum(cost_usd)`.as('cost_usd'),
        sql<number>`sum(input_tokens)`.as('input_tokens'),
        sql<number>`sum(output_tokens)`.as('output_tokens'),
        sql<number>`sum(cache_read_tokens)`.as('cache_read_tokens'),
        sql<number>`sum(cache_creation_tokens)`.as('cache_creation_tokens'),
        sql<number>`sum(duration_ms)`.as('duration_ms'),
      ])
      .groupBy(['status', 'bot_name'])
      .execute();
    return rows.flatMap((r) =>
      isStatus(r.status) && Number(r.tasks) > 0
        ? [
            {
              status: r.status,
              botName: r.bot_name,
              tasks: Number(r.tasks),
              costUsd: Number(r.cost_usd),
              inputTokens: Number(r.input_tokens),
              outputTokens: Number(r.output_tokens),
              cacheReadTokens: Number(r.cache_read_tokens),
              cacheCreationTokens: Number(r.cache_creation_tokens),
              durationMs: Number(r.duration_ms),
            },
          ]
        : [],
    );
  }
}

const isStatus = (s: string): s is TaskStatus => (TASK_STATUSES as readonly string[]).includes(s);

function round(b: CostBucket): CostBucket {
  return { ...b, costUsd: Math.round(b.costUsd * 1e6) / 1e6 };
}
