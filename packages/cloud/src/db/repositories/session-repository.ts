import type { Clock } from '@bematic/protocol';
import type { Kysely, Selectable } from 'kysely';
import { RecordNotFoundError, StoredDataError } from '../errors.js';
import { newSessionId } from '../ids.js';
import type { Schema, SessionsTable } from '../schema.js';
import type { Session, SessionOutcome, SessionRepository } from './types.js';

const SESSION_STATUSES: readonly Session['status'][] = ['active', 'completed', 'failed', 'cancelled'];
const isSessionStatus = (s: string): s is Session['status'] =>
  (SESSION_STATUSES as readonly string[]).includes(s);

function toSession(row: Selectable<SessionsTable>): Session {
  if (!isSessionStatus(row.status)) {
    throw new StoredDataError('sessions', 'status', row.id, `unknown status ${row.status}`);
  }
  return {
    id: row.id,
    taskId: row.task_id,
    claudeSessionId: row.claude_session_id,
    status: row.status,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    costUsd: row.cost_usd,
    durationMs: row.duration_ms,
    createdAt: row.created_at,
    completedAt: row.completed_at,
  };
}

export class KyselySessionRepository implements SessionRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async create(s: { taskId: string; claudeSessionId?: string | null }): Promise<Session> {
    const [created] = await this.createMany([s]);
    if (!created) throw new Error(`session for task ${s.taskId} not created`);
    return created;
  }

  /** Opens a session for each, in one statement; in the order given. */
  async createMany(
    sessions: ReadonlyArray<{ taskId: string; claudeSessionId?: string | null }>,
  ): Promise<Session[]> {
    if (sessions.length === 0) return [];
    const at = this.now();
    const values = sessions.map((s) => ({
      id: newSessionId(),
      task_id: s.taskId,
      claude_session_id: s.claudeSessionId ?? null,
      status: 'active',
      input_tokens: 0,
      output_tokens: 0,
      cost_usd: 0,
      duration_ms: 0,
      created_at: at,
      completed_at: null,
    }));
    const rows = await this.db.insertInto('sessions').values(values).returningAll().execute();
    // RETURNING's order is the database's choice: answer in the order asked.
    const byId = new Map(rows.map((r) => [r.id, toSession(r)]));
    return values.map((v) => {
      const created = byId.get(v.id);
      if (!created) throw new Error(`session for task ${v.task_id} not created`);
      return created;
    });
  }

  async findByTask(taskId: string): Promise<Session[]> {
    const rows = await this.db
      .selectFrom('sessions')
      .selectAll()
      .where('task_id', '=', taskId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toSession);
  }

  async completeOpen(taskId: string, outcome: SessionOutcome): Promise<Session | undefined> {
    const open = this.db
      .selectFrom('sessions')
      .select('id')
      .where('task_id', '=', taskId)
      .where('status', '=', 'active')
      .orderBy('created_at')
      .orderBy('id')
      .limit(1);
    const row = await this.db
      .updateTable('sessions')
      .set((eb) => ({
        status: outcome.status,
        claude_session_id: eb.fn.coalesce(
          eb.val(outcome.claudeSessionId ?? null),
          eb.ref('claude_session_id'),
        ),
        input_tokens: outcome.inputTokens,
        output_tokens: outcome.outputTokens,
        cost_usd: outcome.costUsd,
        duration_ms: outcome.durationMs,
        completed_at: outcome.status === 'active' ? null : this.now(),
      }))
      .where('id', '=', open)
      .returningAll()
      .executeTakeFirst();
    return row && toSession(row);
  }

  async complete(id: string, outcome: SessionOutcome): Promise<Session> {
    const row = await this.db
      .updateTable('sessions')
      .set({
        status: outcome.status,
        ...(outcome.claudeSessionId !== undefined ? { claude_session_id: outcome.claudeSessionId } : {}),
        input_tokens: outcome.inputTokens,
        output_tokens: outcome.outputTokens,
        cost_usd: outcome.costUsd,
        duration_ms: outcome.durationMs,
        completed_at: outcome.status === 'active' ? null : this.now(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new RecordNotFoundError('session', id);
    return toSession(row);
  }
}
