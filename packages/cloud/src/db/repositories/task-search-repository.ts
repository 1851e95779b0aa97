import { TASK_PRIORITIES, TASK_STATUSES, type TaskPriority, type TaskStatus } from '@bematic/protocol';
import { type Kysely, sql } from 'kysely';
import { dialectOf } from '../database.js';
import { StoredDataError } from '../errors.js';
import { COST_BUCKET_MS, type CostDimension, SEARCHED_COLUMNS } from '../migrations/016-history-reads.js';
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

/** The first window a text search tests, in pages: a word in most recent tasks fills its page from it. */
const FIRST_WINDOW_PAGES = 4;

/** Whether keyset position a is strictly newer than b (created_at desc, id desc). */
const newer = (a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): boolean =>
  a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id);

/**
 * A term the text indexes narrow down: one with a run of three letters or digits (pg_trgm takes its
 * trigrams from words; SQLite's trigram tokenizer needs three characters).
 */
const indexable = (text: string): boolean => /[\p{L}\p{N}]{3}/u.test(text);

/** What a `text` narrows a search to. */
type TextFilter =
  /** The text is a task's id: that task. */
  | { kind: 'id'; id: string }
  /**
   * The tasks the text index found the text in, tested again with `pattern`: the index folds case more
   * widely than SQLite's lower(), and the answer is the same test as the window's.
   */
  | { kind: 'matches'; ids: string[]; pattern: string }
  /** Tested on the newest `window` rows in range (a LIKE pattern from containsPattern). */
  | { kind: 'scan'; pattern: string; window: number };

/** The dashboard's reads over the tasks table: filtered keyset pages and cost totals. */
export class KyselyTaskSearchRepository implements TaskSearchRepository {
  constructor(private readonly db: Kysely<Schema>) {}

  async search(q: TaskSearch): Promise<TaskListing[]> {
    return (await this.searchPage(q)).rows;
  }

  /**
   * A task's id finds that task alone. Other text is first tested on a few of the newest rows in range, which
   * a word found in most recent tasks fills the page from; then the text index answers with every task the
   * text occurs in, unless it occurs in more than the scan cap (or is too short for the index), when the rows
   * are tested a window of the cap at a time.
   */
  async searchPage(q: TaskSearch): Promise<TaskSearchPage> {
    if (!q.text) return this.page(q, undefined);
    const cap = Math.max(q.limit, q.scanLimit ?? TEXT_SCAN_ROWS);
    const task = await this.db.selectFrom('tasks').select('id').where('id', '=', q.text).executeTakeFirst();
    if (task) return this.page(q, { kind: 'id', id: task.id });
    const pattern = containsPattern(q.text);
    if (indexable(q.text)) {
      const window = Math.min(cap, FIRST_WINDOW_PAGES * q.limit);
      const newest = await this.page(q, { kind: 'scan', pattern, window });
      // Full, or every row in range was tested.
      if (newest.scannedTo === null) return newest;
      const ids = await this.matchingIds(q.text, pattern, cap);
      if (ids?.length === 0) return { rows: [], scannedTo: null };
      if (ids) return this.page(q, { kind: 'matches', ids, pattern });
    }
    return this.page(q, { kind: 'scan', pattern, window: cap });
  }

  private async page(q: TaskSearch, text: TextFilter | undefined): Promise<TaskSearchPage> {
    const statuses = [...new Set(q.status ?? [])];
    if (statuses.length > 1) {
      // One ordered index range per status, merged here: `status in (…)` over the
      // (status, created_at, id) index would sort every matching row of the history.
      const pages = await Promise.all(statuses.map((status) => this.page({ ...q, status: [status] }, text)));
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
    if (text?.kind === 'id') query = query.where('id', '=', text.id);
    if (text?.kind === 'matches') query = query.where(this.idIn(text.ids)).where(textCondition(text.pattern));
    if (q.before) {
      const { createdAt, id } = q.before;
      // The `<=` bound is what lets both engines start the index scan at the cursor.
      query = query
        .where('created_at', '<=', createdAt)
        .where((eb) => eb.or([eb('created_at', '<', createdAt), eb('id', '<', id)]));
    }
    let scannedTo: TaskSearchPage['scannedTo'] = null;
    if (text?.kind === 'scan') {
      // The work per request is bounded: the match is tested on at most `window` of the newest rows in
      // range (a lazy window on both engines, so a common word stops early), and the page says where the
      // next one resumes.
      const frontier = await query
        .clearSelect()
        .select(['created_at', 'id'])
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(1)
        .offset(text.window - 1)
        .executeTakeFirst();
      if (frontier) {
        scannedTo = { createdAt: frontier.created_at, id: frontier.id };
        query = query
          .where('created_at', '>=', frontier.created_at)
          .where((eb) => eb.or([eb('created_at', '>', frontier.created_at), eb('id', '>=', frontier.id)]));
      }
      query = query.where(textCondition(text.pattern));
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

  /** The ids of every task `text` occurs in, from the text index; undefined when there are more than `cap`. */
  private async matchingIds(text: string, pattern: string, cap: number): Promise<string[] | undefined> {
    if (dialectOf(this.db) === 'postgres') {
      // The planner reads the trigram indexes for a rare word and, for a common one, the table until the
      // limit; the ids come back only when they are all there is.
      const { rows } = await sql<{ ids: string[] | null }>`select
        case when count(*) <= ${cap} then coalesce(array_agg(id), '{}') end as ids
        from (select id from tasks where ${textCondition(pattern)} limit ${cap + 1}) m`.execute(this.db);
      return rows[0]?.ids ?? undefined;
    }
    // Counted in the index alone first: a common word then costs `cap` index entries and no look-ups.
    const phrase = `"${text.replaceAll('"', '""')}"`;
    const { rows } = await sql<{ n: number }>`select count(*) as n from
      (select 1 from task_search where task_search match ${phrase} limit ${cap + 1})`.execute(this.db);
    const count = Number(rows[0]?.n);
    if (count > cap) return undefined;
    if (count === 0) return [];
    const matches = await sql<{ id: string }>`select d.task_id as id from task_search
      join task_search_docs d on d.doc = task_search.rowid where task_search match ${phrase}`.execute(
      this.db,
    );
    return matches.rows.map((r) => r.id);
  }

  /** `id` is one of these (a bounded list from the text index), as one bound value. */
  private idIn(ids: string[]) {
    return dialectOf(this.db) === 'postgres'
      ? sql<boolean>`id = any(${ids})`
      : sql<boolean>`id in (select value from json_each(${JSON.stringify(ids)}))`;
  }

  /**
   * From the maintained `task_costs` buckets (migration 016) that start at or after `since`, plus the tasks
   * created between `since` and the first of them, read from the created_at index (less than one bucket).
   * The day chart's buckets are quarter-hours, so `tzOffsetMinutes` must be a multiple of 15.
   */
  async costs(by: 'day' | 'project' | 'user', since: number, tzOffsetMinutes = 0): Promise<CostBucket[]> {
    const dim: CostDimension = by === 'day' ? 'time' : by;
    const width = COST_BUCKET_MS[dim];
    const offset = tzOffsetMinutes * 60_000;
    if (by === 'day' && offset % width !== 0)
      throw new RangeError(`time zone offset ${tzOffsetMinutes} min: not a multiple of 15 minutes`);
    const boundary = Math.ceil(since / width) * width;
    // Whole days since the epoch in the viewer's time zone; integer division on both engines.
    const day = (column: 'bucket' | 'created_at') =>
      sql<string>`(${sql.ref(column)} - ${sql.lit(offset)}) / ${sql.lit(DAY_MS)}`;
    const rollups = this.db
      .selectFrom('task_costs')
      .select([
        by === 'day' ? day('bucket').as('g') : sql<string>`key`.as('g'),
        'tasks as n',
        'cost_usd as cost',
      ])
      .where('dim', '=', dim)
      .where('bucket', '>=', boundary);
    const head = this.db
      .selectFrom('tasks')
      .select([
        by === 'day'
          ? day('created_at').as('g')
          : sql<string>`${sql.ref(by === 'project' ? 'project_id' : 'user_id')}`.as('g'),
        sql<number>`1`.as('n'),
        'cost_usd as cost',
      ])
      .where('created_at', '>=', since)
      .where('created_at', '<', boundary);
    const grouped = this.db
      .selectFrom(rollups.unionAll(head).as('c'))
      .select(['g', sql<number>`sum(n)`.as('n'), sql<number>`sum(cost)`.as('cost')])
      .groupBy('g');
    if (by === 'day') {
      const rows = await grouped.execute();
      const buckets = new Map<string, CostBucket>();
      const dayKey = (ms: number) => new Date(ms - offset).toISOString().slice(0, 10);
      for (let t = since; t <= Date.now(); t += DAY_MS) {
        const key = dayKey(t);
        buckets.set(key, { key, costUsd: 0, tasks: 0 });
      }
      for (const r of rows) {
        const key = new Date(Number(r.g) * DAY_MS).toISOString().slice(0, 10);
        const b = buckets.get(key) ?? { key, costUsd: 0, tasks: 0 };
        b.costUsd += Number(r.cost);
        b.tasks += Number(r.n);
        buckets.set(key, b);
      }
      return [...buckets.values()].sort((a, b) => a.key.localeCompare(b.key)).map(round);
    }
    const rows = await grouped
      .having(sql<number>`sum(n)`, '>', 0)
      .orderBy(sql`sum(cost)`, 'desc')
      .orderBy('g')
      .limit(12)
      .execute();
    return rows.map((r) => round({ key: r.g, costUsd: Number(r.cost), tasks: Number(r.n) }));
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

/** To the micro-dollar; the counters add and subtract floating-point costs, so a zero may come back as -0. */
function round(b: CostBucket): CostBucket {
  return { ...b, costUsd: Math.round(b.costUsd * 1e6) / 1e6 + 0 };
}

/** `pattern` (a LIKE pattern from containsPattern) occurs in a searched column. */
function textCondition(pattern: string) {
  return sql<boolean>`(${sql.join(
    SEARCHED_COLUMNS.map((c) => sql`lower(${sql.ref(c)}) like ${pattern} escape '\\'`),
    sql` or `,
  )})`;
}
