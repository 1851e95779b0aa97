import type { Clock } from '@bematic/protocol';
import { PRIORITY_RANK, TASK_PRIORITIES, type TaskPriority } from '@bematic/protocol';
import { type Kysely, type Selectable, sql } from 'kysely';
import { dialectOf } from '../database.js';
import { StoredDataError } from '../errors.js';
import type { OfflineQueueTable, Schema } from '../schema.js';
import { decodeSubmission, encodeJson } from './codec.js';
import type { NewOfflineQueueEntry, OfflineQueueEntry, OfflineQueueRepository } from './types.js';

const AGENT_IDS_PER_STATEMENT = 500;

const isPriority = (s: string): s is TaskPriority => (TASK_PRIORITIES as readonly string[]).includes(s);

function toEntry(row: Selectable<OfflineQueueTable>): OfflineQueueEntry {
  if (!isPriority(row.priority)) {
    throw new StoredDataError('offline_queue', 'priority', row.task_id, `unknown priority ${row.priority}`);
  }
  return {
    id: row.id,
    agentId: row.agent_id,
    taskId: row.task_id,
    priority: row.priority,
    payload: decodeSubmission(row.payload, { table: 'offline_queue', column: 'payload', rowId: row.task_id }),
    enqueuedAt: row.enqueued_at,
    expiresAt: row.expires_at,
    attempts: row.attempts,
    lastAttemptAt: row.last_attempt_at,
  };
}

/** Delivery order: urgent before low, then first come first served. */
function byDeliveryOrder(a: OfflineQueueEntry, b: OfflineQueueEntry): number {
  return PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || a.enqueuedAt - b.enqueuedAt || a.id - b.id;
}

export class KyselyOfflineQueueRepository implements OfflineQueueRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  /**
   * Re-enqueueing a queued task replaces agent, priority, payload and expiry
   * but keeps its place in line (enqueuedAt) unless a new one is given.
   */
  async enqueue(e: NewOfflineQueueEntry, attemptAt?: number): Promise<OfflineQueueEntry> {
    const payload = encodeJson(e.payload);
    const rank = PRIORITY_RANK[e.priority];
    const row = await this.db
      .insertInto('offline_queue')
      .values({
        agent_id: e.agentId,
        task_id: e.taskId,
        priority: e.priority,
        priority_rank: rank,
        payload,
        enqueued_at: e.enqueuedAt ?? this.now(),
        expires_at: e.expiresAt,
        attempts: attemptAt === undefined ? 0 : 1,
        last_attempt_at: attemptAt ?? null,
      })
      .onConflict((oc) =>
        oc.column('task_id').doUpdateSet((eb) => ({
          agent_id: e.agentId,
          priority: e.priority,
          priority_rank: rank,
          payload,
          expires_at: e.expiresAt,
          ...(e.enqueuedAt !== undefined ? { enqueued_at: e.enqueuedAt } : {}),
          ...(attemptAt !== undefined
            ? { attempts: eb('offline_queue.attempts', '+', 1), last_attempt_at: attemptAt }
            : {}),
        })),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return toEntry(row);
  }

  async claimMany(taskIds: readonly string[], agentId: string, at: number): Promise<OfflineQueueEntry[]> {
    if (taskIds.length === 0) return [];
    let target = this.db
      .selectFrom('offline_queue')
      .select('id')
      .where('task_id', 'in', taskIds)
      .where('agent_id', '=', agentId);
    if (dialectOf(this.db) === 'postgres') target = target.forUpdate().skipLocked();
    const rows = await this.db
      .updateTable('offline_queue')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), last_attempt_at: at }))
      .where('id', 'in', target)
      .returningAll()
      .execute();
    return rows.map(toEntry);
  }

  async taskIdsForAgent(agentId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('offline_queue')
      .select('task_id')
      .where('agent_id', '=', agentId)
      .orderBy('priority_rank')
      .orderBy('enqueued_at')
      .orderBy('id')
      .execute();
    return rows.map((r) => r.task_id);
  }

  async listForAgent(agentId: string, limit?: number): Promise<OfflineQueueEntry[]> {
    let q = this.db
      .selectFrom('offline_queue')
      .selectAll()
      .where('agent_id', '=', agentId)
      .orderBy('priority_rank')
      .orderBy('enqueued_at')
      .orderBy('id');
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map(toEntry);
  }

  async listUnsent(agentIds: readonly string[], sentBefore: number): Promise<OfflineQueueEntry[]> {
    const rows: OfflineQueueEntry[] = [];
    // Bound the statement's parameters whatever the number of agents (one index lookup per agent).
    for (let i = 0; i < agentIds.length; i += AGENT_IDS_PER_STATEMENT) {
      const found = await this.db
        .selectFrom('offline_queue')
        .selectAll()
        .where('agent_id', 'in', agentIds.slice(i, i + AGENT_IDS_PER_STATEMENT))
        .where((eb) => eb.or([eb('attempts', '=', 0), eb('last_attempt_at', '<=', sentBefore)]))
        .execute();
      rows.push(...found.map(toEntry));
    }
    return rows;
  }

  async findByTask(taskId: string): Promise<OfflineQueueEntry | undefined> {
    const row = await this.db
      .selectFrom('offline_queue')
      .selectAll()
      .where('task_id', '=', taskId)
      .executeTakeFirst();
    return row && toEntry(row);
  }

  async withRows(taskIds: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < taskIds.length; i += 500) {
      const rows = await this.db
        .selectFrom('offline_queue')
        .select('task_id')
        .where('task_id', 'in', taskIds.slice(i, i + 500))
        .execute();
      for (const r of rows) found.add(r.task_id);
    }
    return found;
  }

  async claim(taskId: string, agentId: string, at: number): Promise<OfflineQueueEntry | undefined> {
    let target = this.db
      .selectFrom('offline_queue')
      .select('id')
      .where('task_id', '=', taskId)
      .where('agent_id', '=', agentId);
    // SQLite has one writer at a time already; PostgreSQL instances must not wait for each other's rows.
    if (dialectOf(this.db) === 'postgres') target = target.forUpdate().skipLocked();
    const row = await this.db
      .updateTable('offline_queue')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), last_attempt_at: at }))
      .where('id', 'in', target)
      .returningAll()
      .executeTakeFirst();
    return row && toEntry(row);
  }

  async claimBegun(
    taskId: string,
    agentId: string,
    attempt: number,
    at: number,
  ): Promise<OfflineQueueEntry | undefined> {
    let target = this.db
      .selectFrom('offline_queue')
      .innerJoin('tasks', 'tasks.id', 'offline_queue.task_id')
      .select('offline_queue.id')
      .where('offline_queue.task_id', '=', taskId)
      .where('offline_queue.agent_id', '=', agentId)
      .where('tasks.agent_id', '=', agentId)
      .where('tasks.status', '=', 'submitted')
      .where('tasks.attempt', '=', attempt);
    let claim = this.db.updateTable('offline_queue').set({ last_attempt_at: at });
    if (dialectOf(this.db) === 'postgres') {
      target = target.forUpdate('offline_queue').skipLocked();
      // The attempt is durable already (the sender's commit); this write only marks when it went out, so its
      // commit need not wait for the disk. Set for this statement's own transaction (is_local), inside the
      // statement, so the claim stays one round trip; inside a caller's transaction it is left alone.
      if (!this.db.isTransaction)
        claim = claim.where(sql<boolean>`set_config('synchronous_commit', 'off', true) = 'off'`);
    }
    const row = await claim.where('id', 'in', target).returningAll().executeTakeFirst();
    return row && toEntry(row);
  }

  async removeByTask(taskId: string): Promise<boolean> {
    const res = await this.db.deleteFrom('offline_queue').where('task_id', '=', taskId).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  /** One DELETE … RETURNING, so an expired entry is handed to exactly one caller. */
  async takeExpired(now: number): Promise<OfflineQueueEntry[]> {
    const rows = await this.db
      .deleteFrom('offline_queue')
      .where('expires_at', '<=', now)
      .returningAll()
      .execute();
    return rows.map(toEntry).sort(byDeliveryOrder);
  }

  async countByAgent(agentIds?: readonly string[]): Promise<Record<string, number>> {
    if (agentIds?.length === 0) return {};
    let q = this.db.selectFrom('offline_queue').select(({ fn }) => ['agent_id', fn.countAll().as('n')]);
    if (agentIds) q = q.where('agent_id', 'in', agentIds);
    const rows = await q.groupBy('agent_id').execute();
    return Object.fromEntries(rows.map((r) => [r.agent_id, Number(r.n)]));
  }

  async agentsWithWaiting(agentIds: readonly string[]): Promise<string[]> {
    const found: string[] = [];
    // Through the agents table (every connected agent has its row): one index probe per agent asked about.
    for (let i = 0; i < agentIds.length; i += 500) {
      const rows = await this.db
        .selectFrom('agents')
        .select('id')
        .where('id', 'in', agentIds.slice(i, i + 500))
        .where(({ exists, selectFrom }) =>
          exists(
            selectFrom('offline_queue')
              .select('task_id')
              .whereRef('offline_queue.agent_id', '=', 'agents.id'),
          ),
        )
        .execute();
      for (const r of rows) found.push(r.id);
    }
    return found;
  }
}
