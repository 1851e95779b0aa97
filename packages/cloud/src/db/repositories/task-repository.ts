import type { Clock } from '@bematic/protocol';
import {
  IllegalTransitionError,
  isTerminalStatus,
  judgeTransition,
  TASK_PRIORITIES,
  TASK_STATUSES,
  TASK_TRANSITIONS,
  type TaskPriority,
  type TaskStatus,
} from '@bematic/protocol';
import { type Kysely, type Selectable, sql, type Updateable } from 'kysely';
import { dialectOf } from '../database.js';
import { guardUnique, RecordNotFoundError, StoredDataError } from '../errors.js';
import { newTaskId } from '../ids.js';
import type { Schema, TasksTable } from '../schema.js';
import {
  decodeBool,
  decodeStringArray,
  decodeSubmission,
  decodeWorkspace,
  definedOnly,
  encodeBool,
  encodeJson,
  stripNul,
} from './codec.js';
import { KyselyOfflineQueueRepository } from './offline-queue-repository.js';
import { precompiled } from './precompiled.js';
import { KyselySessionRepository } from './session-repository.js';
import { inTransaction } from './transaction.js';
import type {
  AttemptGuard,
  NewTask,
  OfflineQueueEntry,
  OutboxAttempt,
  StartRequest,
  Task,
  TaskPatch,
  TaskQuery,
  TaskRepository,
  TransitionResult,
} from './types.js';

function isStatus(s: string): s is TaskStatus {
  return (TASK_STATUSES as readonly string[]).includes(s);
}
function isPriority(s: string): s is TaskPriority {
  return (TASK_PRIORITIES as readonly string[]).includes(s);
}

export function toTask(row: Selectable<TasksTable>): Task {
  const ref = (column: string) => ({ table: 'tasks', column, rowId: row.id });
  if (!isStatus(row.status))
    throw new StoredDataError('tasks', 'status', row.id, `unknown status ${row.status}`);
  if (!isPriority(row.priority)) {
    throw new StoredDataError('tasks', 'priority', row.id, `unknown priority ${row.priority}`);
  }
  return {
    id: row.id,
    projectId: row.project_id,
    agentId: row.agent_id,
    botName: row.bot_name,
    command: row.command,
    prompt: row.prompt,
    model: row.model,
    priority: row.priority,
    status: row.status,
    userId: row.user_id,
    channelId: row.channel_id,
    threadTs: row.thread_ts,
    messageTs: row.message_ts,
    progressMessageTs: row.progress_message_ts,
    sessionId: row.session_id,
    parentTaskId: row.parent_task_id,
    submission: decodeSubmission(row.submission, ref('submission')),
    result: row.result,
    errorMessage: row.error_message,
    errorCode: row.error_code,
    recoverable: decodeBool(row.recoverable),
    warning: row.warning,
    filesChanged: decodeStringArray(row.files_changed, ref('files_changed')),
    commandsRun: decodeStringArray(row.commands_run, ref('commands_run')),
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    cacheReadTokens: row.cache_read_tokens,
    cacheCreationTokens: row.cache_creation_tokens,
    costUsd: row.cost_usd,
    durationMs: row.duration_ms,
    numTurns: row.num_turns,
    continuations: row.continuations,
    restoredFromArchive: row.restored_from_archive,
    restoredAt: row.restored_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    workspace: decodeWorkspace(row.workspace, ref('workspace')),
    pullRequestUrl: row.pull_request_url,
    attempt: Number(row.attempt),
  };
}

function patchToRow(patch: TaskPatch): Updateable<TasksTable> {
  return definedOnly({
    agent_id: patch.agentId,
    thread_ts: patch.threadTs,
    progress_message_ts: patch.progressMessageTs,
    session_id: patch.sessionId,
    result: stripNul(patch.result),
    error_message: stripNul(patch.errorMessage),
    error_code: patch.errorCode,
    recoverable: patch.recoverable === undefined ? undefined : encodeBool(patch.recoverable),
    warning: stripNul(patch.warning),
    files_changed: patch.filesChanged && encodeJson(patch.filesChanged),
    commands_run: patch.commandsRun && encodeJson(patch.commandsRun),
    started_at: patch.startedAt,
    completed_at: patch.completedAt,
    input_tokens: patch.inputTokens,
    output_tokens: patch.outputTokens,
    cache_read_tokens: patch.cacheReadTokens,
    cache_creation_tokens: patch.cacheCreationTokens,
    cost_usd: patch.costUsd,
    duration_ms: patch.durationMs,
    num_turns: patch.numTurns,
    continuations: patch.continuations,
    workspace: patch.workspace === undefined ? undefined : patch.workspace && encodeJson(patch.workspace),
    pull_request_url: patch.pullRequestUrl,
  });
}

/** For each status, the statuses a task may move to it from (the state machine read backwards). */
const MOVES_INTO = Object.fromEntries(
  TASK_STATUSES.map((to) => [to, TASK_STATUSES.filter((from) => TASK_TRANSITIONS[from].includes(to))]),
) as Record<TaskStatus, TaskStatus[]>;

/** Read for every frame an agent sends about a task. */
const TASK_BY_ID = precompiled((db) => db.selectFrom('tasks').selectAll().where('id', '=', ''));

/** States from which a task may be (re)sent to an agent. */
const RESENDABLE: TaskStatus[] = ['pending', 'queued', 'submitted'];

function staleness(task: Task, guard: AttemptGuard): 'agent' | 'attempt' | undefined {
  if (task.agentId !== guard.agentId) return 'agent';
  if (task.attempt !== guard.attempt) return 'attempt';
  return undefined;
}

export class KyselyTaskRepository implements TaskRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  /**
   * A generated id is `task_…` (see ids.ts). The stored submission always
   * carries the task's own id, so a resent TASK_SUBMIT can never name another task.
   */
  async create(task: NewTask): Promise<Task> {
    const id = task.id ?? newTaskId();
    const now = this.now();
    const row = await guardUnique('task', id, () =>
      this.db
        .insertInto('tasks')
        .values({
          id,
          project_id: task.projectId,
          agent_id: task.agentId,
          bot_name: task.botName,
          command: task.command,
          prompt: stripNul(task.prompt),
          model: task.model,
          priority: task.priority,
          status: task.status ?? 'pending',
          user_id: task.userId,
          channel_id: task.channelId,
          thread_ts: task.threadTs ?? null,
          message_ts: task.messageTs ?? null,
          progress_message_ts: null,
          session_id: task.sessionId ?? null,
          parent_task_id: task.parentTaskId ?? null,
          submission: encodeJson({ ...task.submission, taskId: id }),
          result: null,
          error_message: null,
          error_code: null,
          recoverable: null,
          warning: null,
          files_changed: '[]',
          commands_run: '[]',
          input_tokens: 0,
          output_tokens: 0,
          cache_read_tokens: 0,
          cache_creation_tokens: 0,
          cost_usd: 0,
          duration_ms: 0,
          num_turns: 0,
          continuations: 0,
          restored_from_archive: task.restoredFromArchive ?? null,
          restored_at: task.restoredAt ?? null,
          created_at: now,
          updated_at: now,
          started_at: null,
          completed_at: null,
          workspace: null,
          pull_request_url: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return toTask(row);
  }

  async findById(id: string): Promise<Task | undefined> {
    const [row] = (await TASK_BY_ID(this.db, [id])).rows;
    return row && toTask(row);
  }

  async findByIds(ids: readonly string[]): Promise<Task[]> {
    if (ids.length === 0) return [];
    if (ids.length === 1) return (await TASK_BY_ID(this.db, [ids[0]])).rows.map(toTask);
    return (await this.db.selectFrom('tasks').selectAll().where('id', 'in', ids).execute()).map(toTask);
  }

  async findByThread(channelId: string, threadTs: string): Promise<Task | undefined> {
    const row = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('channel_id', '=', channelId)
      .where('thread_ts', '=', threadTs)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    return row && toTask(row);
  }

  /** Newest first. `olderThan` keeps tasks created before that instant. */
  async list(query: TaskQuery = {}): Promise<Task[]> {
    let q = this.db.selectFrom('tasks').selectAll();
    if (query.status !== undefined) {
      const statuses = Array.isArray(query.status) ? query.status : [query.status];
      if (statuses.length === 0) return [];
      q = q.where('status', 'in', statuses);
    }
    if (query.projectId !== undefined) q = q.where('project_id', '=', query.projectId);
    if (query.agentId !== undefined) q = q.where('agent_id', '=', query.agentId);
    if (query.parentTaskId !== undefined) q = q.where('parent_task_id', '=', query.parentTaskId);
    if (query.olderThan !== undefined) q = q.where('created_at', '<', query.olderThan);
    q = q.orderBy('created_at', 'desc').orderBy('id', 'desc');
    if (query.limit !== undefined) q = q.limit(query.limit);
    return (await q.execute()).map(toTask);
  }

  /** From the totals the database keeps per status (migration 008), not a count of the history. */
  async countByStatus(): Promise<Record<TaskStatus, number>> {
    const rows = await this.db
      .selectFrom('task_totals')
      .select(['status', sql<number>`sum(tasks)`.as('n')])
      .groupBy('status')
      .execute();
    const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    for (const row of rows) if (isStatus(row.status)) counts[row.status] = Number(row.n);
    return counts;
  }

  /**
   * Reads the row under a lock (FOR UPDATE on PostgreSQL; SQLite serialises
   * writers), judges the move with the state machine, and applies it only if
   * the status is still the one judged, so of two identical terminal messages
   * racing each other exactly one reports `changed: true`.
   *
   * With a guard (a message from an agent), the same UPDATE also requires the row's agent_id and attempt to be
   * the guard's — ownership, attempt and status are compared and set in one statement, so a message from an
   * earlier send or from another agent never changes the task, whatever ran in between. A terminal task is
   * judged as before (a late duplicate is a no-op), whoever sent it.
   */
  async transition(
    id: string,
    to: TaskStatus,
    patch: TaskPatch = {},
    guard?: AttemptGuard,
  ): Promise<TransitionResult> {
    // The usual case in one statement: the row is in a status the state machine lets move to `to` (and, with
    // a guard, still the guard's agent and attempt) — judged and applied by the same UPDATE, so it needs no
    // read, no lock taken beforehand and no transaction of its own. Anything else (a duplicate, an illegal or
    // stale message, a missing row) is judged below against the row as it is.
    const applied = await this.applyIfLegal(id, to, patch, guard);
    if (applied) return { changed: true, task: applied };
    const postgres = dialectOf(this.db) === 'postgres';
    return inTransaction(this.db, async (trx) => {
      for (;;) {
        const base = trx.selectFrom('tasks').selectAll().where('id', '=', id);
        if (!postgres) {
          // Take SQLite's write lock before reading: a deferred transaction that
          // reads first cannot wait for another process's writer, it fails busy.
          await trx.updateTable('tasks').set({ id }).where('id', '=', id).execute();
        }
        const row = await (postgres ? base.forUpdate() : base).executeTakeFirst();
        if (!row) throw new RecordNotFoundError('task', id);
        const current = toTask(row);
        if (guard && !isTerminalStatus(current.status)) {
          const stale = staleness(current, guard);
          if (stale) return { changed: false, task: current, stale };
        }
        const verdict = judgeTransition(current.status, to);
        if (verdict.kind === 'noop') return { changed: false, task: current };
        if (verdict.kind === 'illegal') throw new IllegalTransitionError(id, current.status, to);

        const now = this.now();
        const values: Updateable<TasksTable> = { ...patchToRow(patch), status: to, updated_at: now };
        if (to === 'running' && current.startedAt === null && patch.startedAt === undefined)
          values.started_at = now;
        if (isTerminalStatus(to) && patch.completedAt === undefined) values.completed_at = now;

        let update = trx
          .updateTable('tasks')
          .set(values)
          .where('id', '=', id)
          .where('status', '=', current.status);
        if (guard) update = update.where('agent_id', '=', guard.agentId).where('attempt', '=', guard.attempt);
        const updated = await update.returningAll().executeTakeFirst();
        // Lost a race with a writer outside this connection: judge again against its result.
        if (updated) return { changed: true, task: toTask(updated) };
      }
    });
  }

  start(id: string, guard: AttemptGuard, at: number): Promise<Task | null> {
    return inTransaction(
      this.db,
      async (trx) => (await KyselyTaskRepository.startMany(trx, [{ id, guard, at }]))[0] ?? null,
    );
  }

  /**
   * `start` for many tasks in two statements: one compare-and-set UPDATE for all of them (each row still in a
   * status that may start, and its guard's), one INSERT of their sessions. One result per request, in order.
   */
  static async startMany(
    trx: Kysely<Schema>,
    requests: ReadonlyArray<StartRequest>,
  ): Promise<Array<Task | null>> {
    if (requests.length === 0) return [];
    const at = Math.max(...requests.map((r) => r.at));
    const rows = await trx
      .updateTable('tasks')
      .set({ status: 'running', started_at: at, updated_at: at })
      .where('status', 'in', MOVES_INTO.running)
      .where(({ and, or, eb }) =>
        or(
          requests.map((r) =>
            and([
              eb('id', '=', r.id),
              eb('agent_id', '=', r.guard.agentId),
              eb('attempt', '=', r.guard.attempt),
            ]),
          ),
        ),
      )
      .returningAll()
      .execute();
    const started = new Map(rows.map((r) => [r.id, toTask(r)]));
    if (started.size > 0) {
      await new KyselySessionRepository(trx, () => at).createMany(
        [...started.values()].map((t) => ({ taskId: t.id, claudeSessionId: t.sessionId })),
      );
    }
    return requests.map((r) => started.get(r.id) ?? null);
  }

  /** What a new attempt of a task sets: the next attempt number, the agent it goes to, submitted. */
  private newAttempt(agentId: string) {
    return {
      attempt: sql<number>`attempt + 1`,
      agent_id: agentId,
      status: 'submitted' as const,
      updated_at: this.now(),
    };
  }

  /** One compare-and-set UPDATE: applied only from a status that may move to `to`, with the guard's owner. */
  private async applyIfLegal(
    id: string,
    to: TaskStatus,
    patch: TaskPatch,
    guard: AttemptGuard | undefined,
  ): Promise<Task | undefined> {
    const from = MOVES_INTO[to];
    if (from.length === 0) return undefined;
    const now = this.now();
    const values: Updateable<TasksTable> = { ...patchToRow(patch), status: to, updated_at: now };
    if (isTerminalStatus(to) && patch.completedAt === undefined) values.completed_at = now;
    let update = this.db.updateTable('tasks').set(values).where('id', '=', id).where('status', 'in', from);
    // A task started before (sent again after a lost ACK) keeps its first start.
    if (to === 'running' && patch.startedAt === undefined)
      update = update.set({ started_at: sql<number>`coalesce(started_at, ${now})` });
    if (guard) update = update.where('agent_id', '=', guard.agentId).where('attempt', '=', guard.attempt);
    const row = await update.returningAll().executeTakeFirst();
    return row && toTask(row);
  }

  async beginAttempt(
    id: string,
    agentId: string,
    outbox?: OutboxAttempt,
  ): Promise<{ task: Task; from: TaskStatus } | undefined> {
    return inTransaction(this.db, async (trx) => {
      const before = await trx
        .selectFrom('tasks')
        .select('status')
        .where('id', '=', id)
        .where('status', 'in', RESENDABLE)
        .executeTakeFirst();
      if (!before) return undefined;
      if (outbox) {
        const queue = new KyselyOfflineQueueRepository(trx, this.now);
        const held =
          outbox.kind === 'write'
            ? await queue.enqueue(outbox.entry, outbox.at)
            : await queue.claim(id, agentId, outbox.at);
        // Another instance is sending it, or it left the outbox: not this caller's send.
        if (!held) return undefined;
      }
      const row = await trx
        .updateTable('tasks')
        .set(this.newAttempt(agentId))
        .where('id', '=', id)
        .where('status', 'in', RESENDABLE)
        .returningAll()
        .executeTakeFirst();
      if (!row || !isStatus(before.status)) return undefined;
      const task = toTask(row);
      const notice = outbox?.kind === 'write' && dialectOf(trx) === 'postgres' ? outbox.notify?.(task) : null;
      if (notice) await sql`select pg_notify(${notice.channel}, ${notice.payload})`.execute(trx);
      return { task, from: before.status };
    });
  }

  async beginAttempts(
    ids: readonly string[],
    agentId: string,
    at: number,
  ): Promise<Array<{ task: Task; from: TaskStatus; entry: OfflineQueueEntry }>> {
    if (ids.length === 0) return [];
    return inTransaction(this.db, async (trx) => {
      const before = await trx
        .selectFrom('tasks')
        .select(['id', 'status'])
        .where('id', 'in', ids)
        .where('status', 'in', RESENDABLE)
        .execute();
      if (before.length === 0) return [];
      const held = await new KyselyOfflineQueueRepository(trx, this.now).claimMany(
        before.map((r) => r.id),
        agentId,
        at,
      );
      if (held.length === 0) return [];
      const rows = await trx
        .updateTable('tasks')
        .set(this.newAttempt(agentId))
        .where(
          'id',
          'in',
          held.map((e) => e.taskId),
        )
        .where('status', 'in', RESENDABLE)
        .returningAll()
        .execute();
      const from = new Map(before.map((r) => [r.id, r.status]));
      const entries = new Map(held.map((e) => [e.taskId, e]));
      const begun = new Map(rows.map((r) => [r.id, r]));
      const out: Array<{ task: Task; from: TaskStatus; entry: OfflineQueueEntry }> = [];
      for (const id of ids) {
        const row = begun.get(id);
        const status = from.get(id);
        const entry = entries.get(id);
        if (row && entry && status !== undefined && isStatus(status))
          out.push({ task: toTask(row), from: status, entry });
      }
      return out;
    });
  }

  async update(id: string, patch: TaskPatch): Promise<Task> {
    const row = await this.db
      .updateTable('tasks')
      .set({ ...patchToRow(patch), updated_at: this.now() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new RecordNotFoundError('task', id);
    return toTask(row);
  }

  /** Removes the task with its queue entry; sessions go with it by foreign key. */
  async delete(id: string): Promise<boolean> {
    return inTransaction(this.db, async (trx) => {
      await trx.deleteFrom('offline_queue').where('task_id', '=', id).execute();
      await trx.deleteFrom('task_steps').where('task_id', '=', id).execute();
      const res = await trx.deleteFrom('tasks').where('id', '=', id).executeTakeFirst();
      return res.numDeletedRows > 0n;
    });
  }
}
