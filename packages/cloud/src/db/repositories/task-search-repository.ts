import { TASK_PRIORITIES, TASK_STATUSES, type TaskPriority, type TaskStatus } from '@bematic/protocol';
import { type Kysely, sql } from 'kysely';
import { StoredDataError } from '../errors.js';
import type { Schema } from '../schema.js';
import { containsPattern, TEXT_SCAN_ROWS } from './text-match.js';
import type {
  CostBucket,
  TaskListing,
  TaskSearch,
  TaskSearchPage,
  TaskSearchRepository,
  TaskTotals,
} from './types.js';

const DAY_MS = 86_400_000;

/** Whether keyset position a is strictly newer than b (created_at desc, id desc). */
const newer = (a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): boolean =>
  a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id);

/** The dashboard's reads over the tasks table: filtered keyset pages and cost totals. */
export class KyselyTaskSearchRepository implements TaskSearchRepository {
  constructor(private readonly db: Kysely<Schema>) {}

  async search(q: TaskSearch): Promise<TaskListing[]> {
    return (await this.searchPage(q)).rows;
  }

  async searchPage(q: TaskSearch): Promise<TaskSearchPage> {
    const statuses = [...new Set(q.status ?? [])];
    if (statuses.length > 1) {
      // One ordered index range per status, merged here: `status in (…)` over the
      // (status, created_at, id) index would sort every matching row of the history.
      const pages = await Promise.all(statuses.map((status) => this.searchPage({ ...q, status: [status] })));
      // A bounded text scan read each status down to its own frontier; only rows at or
      // above the newest of those frontiers are complete, the rest come again next page.
      const scannedTo = pages.reduce<TaskSearchPage['scannedTo']>(
        (acc, p) => (p.scannedTo && (!acc || newer(p.scannedTo, acc)) ? p.scannedTo : acc),
        null,
      );
      const rows = pages
        .flatMap((p) => p.rows)
        .filter((r) => !scannedTo || !newer(scannedTo, r))
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
        .slice(0, q.limit);
      return { rows, scannedTo };
    }
    const textScan = !!q.text && !(await this.isTaskId(q.text));
    const scanCap = Math.max(q.limit, q.scanLimit ?? TEXT_SCAN_ROWS);
    let query = this.db
      .selectFrom('tasks')
      .select([
        'id',
        'status',
        'project_id',
        'agent_id',
        'bot_name',
        'command',
        'model',
        'priority',
        'user_id',
        'channel_id',
        'thread_ts',
        sql<string>`substr(prompt, 1, 161)`.as('prompt_head'),
        'input_tokens',
        'output_tokens',
        'cache_read_tokens',
        'cache_creation_tokens',
        'cost_usd',
        'duration_ms',
        'error_code',
        'created_at',
        'started_at',
        'completed_at',
        'restored_from_archive',
      ]);
    if (statuses[0] !== undefined) query = query.where('status', '=', statuses[0]);
    if (q.projectId !== undefined) query = query.where('project_id', '=', q.projectId);
    if (q.userId !== undefined) query = query.where('user_id', '=', q.userId);
    if (q.botName !== undefined) query = query.where('bot_name', '=', q.botName);
    if (q.from !== undefined) query = query.where('created_at', '>=', q.from);
    if (q.to !== undefined) query = query.where('created_at', '<', q.to);
    if (q.text && !textScan) query = query.where('id', '=', q.text);
    if (q.before) {
      const { createdAt, id } = q.before;
      // The `<=` bound is what lets both engines start the index scan at the cursor.
      query = query
        .where('created_at', '<=', createdAt)
        .where((eb) => eb.or([eb('created_at', '<', createdAt), eb('id', '<', id)]));
    }
    let scannedTo: TaskSearchPage['scannedTo'] = null;
    if (textScan && q.text) {
      // A substring has no index to use; the work per request is bounded instead: the match is
      // tested on at most `scanCap` of the newest rows in range (a lazy window on both engines,
      // so a common word stops early), and the page says where the next one resumes.
      const pattern = containsPattern(q.text);
      const frontier = await query
        .clearSelect()
        .select(['created_at', 'id'])
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(1)
        .offset(scanCap - 1)
        .executeTakeFirst();
      if (frontier) {
        scannedTo = { createdAt: frontier.created_at, id: frontier.id };
        query = query
          .where('created_at', '>=', frontier.created_at)
          .where((eb) => eb.or([eb('created_at', '>', frontier.created_at), eb('id', '>=', frontier.id)]));
      }
      query = query.where(
        sql<boolean>`(lower(prompt) like ${pattern} escape '\\' or lower(coalesce(result, '')) like ${pattern} escape '\\' or id = ${q.text})`,
      );
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute();
    // Every scanned row was read when the page filled up before the frontier: no gap to report.
    if (rows.length >= q.limit) scannedTo = null;
    return {
      scannedTo,
      rows: rows.map((r) => {
        if (!isStatus(r.status))
          throw new StoredDataError('tasks', 'status', r.id, `unknown status ${r.status}`);
        if (!isPriority(r.priority))
          throw new StoredDataError('tasks', 'priority', r.id, `unknown priority ${r.priority}`);
        return {
          id: r.id,
          status: r.status,
          projectId: r.project_id,
          agentId: r.agent_id,
          botName: r.bot_name,
          command: r.command,
          model: r.model,
          priority: r.priority,
          userId: r.user_id,
          channelId: r.channel_id,
          threadTs: r.thread_ts,
          prompt: r.prompt_head,
          inputTokens: r.input_tokens,
          outputTokens: r.output_tokens,
          cacheReadTokens: r.cache_read_tokens,
          cacheCreationTokens: r.cache_creation_tokens,
          costUsd: r.cost_usd,
          durationMs: r.duration_ms,
          errorCode: r.error_code,
          createdAt: r.created_at,
          startedAt: r.started_at,
          completedAt: r.completed_at,
          restoredFromArchive: r.restored_from_archive,
        };
      }),
    };
  }

  /** An id search is a key lookup; a text search has to read every prompt. */
  private async isTaskId(text: string): Promise<boolean> {
    const row = await this.db.selectFrom('tasks').select('id').where('id', '=', text).executeTakeFirst();
    return row !== undefined;
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
const isPriority = (s: string): s is TaskPriority => (TASK_PRIORITIES as readonly string[]).includes(s);

function round(b: CostBucket): CostBucket {
  return { ...b, costUsd: Math.round(b.costUsd * 1e6) / 1e6 };
}
