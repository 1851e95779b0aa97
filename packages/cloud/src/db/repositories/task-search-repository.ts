import { type Kysely, sql } from 'kysely';
import type { Schema } from '../schema.js';
import { toTask } from './task-repository.js';
import type { CostBucket, Task, TaskSearch, TaskSearchRepository } from './types.js';

const DAY_MS = 86_400_000;

/** The dashboard's reads over the tasks table: filtered keyset pages and cost totals. */
export class KyselyTaskSearchRepository implements TaskSearchRepository {
  constructor(private readonly db: Kysely<Schema>) {}

  async search(q: TaskSearch): Promise<Task[]> {
    let query = this.db.selectFrom('tasks').selectAll();
    if (q.status && q.status.length > 0) query = query.where('status', 'in', q.status);
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
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', createdAt),
          eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)]),
        ]),
      );
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute();
    return rows.map(toTask);
  }

  async costs(by: 'day' | 'project' | 'user', since: number, tzOffsetMinutes = 0): Promise<CostBucket[]> {
    if (by === 'day') {
      const rows = await this.db
        .selectFrom('tasks')
        .select(['created_at', 'cost_usd'])
        .where('created_at', '>=', since)
        .execute();
      const buckets = new Map<string, CostBucket>();
      const offset = tzOffsetMinutes * 60_000;
      const dayKey = (ms: number) => new Date(ms - offset).toISOString().slice(0, 10);
      for (let t = since; t <= Date.now(); t += DAY_MS) {
        const key = dayKey(t);
        buckets.set(key, { key, costUsd: 0, tasks: 0 });
      }
      for (const r of rows) {
        const key = dayKey(r.created_at);
        const b = buckets.get(key) ?? { key, costUsd: 0, tasks: 0 };
        b.costUsd += r.cost_usd;
        b.tasks++;
        buckets.set(key, b);
      }
      return [...buckets.values()].sort((a, b) => a.key.localeCompare(b.key)).map(round);
    }
    const column = by === 'project' ? 'project_id' : 'user_id';
    const rows = await this.db
      .selectFrom('tasks')
      .select([`${column} as key`, sql<number>`sum(cost_usd)`.as('cost'), sql<number>`count(*)`.as('n')])
      .where('created_at', '>=', since)
      .groupBy(column)
      .execute();
    return rows
      .map((r) => round({ key: r.key, costUsd: Number(r.cost), tasks: Number(r.n) }))
      .sort((a, b) => b.costUsd - a.costUsd)
      .slice(0, 12);
  }
}

function round(b: CostBucket): CostBucket {
  return { ...b, costUsd: Math.round(b.costUsd * 1e6) / 1e6 };
}
