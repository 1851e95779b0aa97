import {
  type Clock,
  PERMISSION_DECISIONS,
  PERMISSION_REASONS,
  type PermissionDecision,
  type PermissionReason,
} from '@bematic/protocol';
import type { Kysely, Selectable } from 'kysely';
import { StoredDataError } from '../errors.js';
import type { PermissionRequestsTable, Schema } from '../schema.js';
import type { NewPermissionRequest, PermissionRequestRecord, PermissionRequestRepository } from './types.js';

const isReason = (s: string): s is PermissionReason => (PERMISSION_REASONS as readonly string[]).includes(s);
const isStatus = (s: string): s is PermissionRequestRecord['status'] =>
  s === 'pending' || (PERMISSION_DECISIONS as readonly string[]).includes(s);

function toRecord(row: Selectable<PermissionRequestsTable>): PermissionRequestRecord {
  if (!isReason(row.reason))
    throw new StoredDataError('permission_requests', 'reason', row.id, `unknown reason ${row.reason}`);
  if (!isStatus(row.status))
    throw new StoredDataError('permission_requests', 'status', row.id, `unknown status ${row.status}`);
  return {
    id: row.id,
    taskId: row.task_id,
    agentId: row.agent_id,
    attempt: row.attempt === null ? null : Number(row.attempt),
    tool: row.tool,
    summary: row.summary,
    reason: row.reason,
    status: row.status,
    decidedBy: row.decided_by,
    channelId: row.channel_id,
    messageTs: row.message_ts,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    decidedAt: row.decided_at === null ? null : Number(row.decided_at),
  };
}

export class KyselyPermissionRequestRepository implements PermissionRequestRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async create(r: NewPermissionRequest): Promise<PermissionRequestRecord> {
    await this.db
      .insertInto('permission_requests')
      .values({
        id: r.id,
        task_id: r.taskId,
        agent_id: r.agentId,
        attempt: r.attempt,
        tool: r.tool,
        summary: r.summary,
        reason: r.reason,
        status: 'pending',
        decided_by: null,
        channel_id: null,
        message_ts: null,
        created_at: this.now(),
        expires_at: r.expiresAt,
        decided_at: null,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    const stored = await this.findById(r.id);
    if (!stored) throw new StoredDataError('permission_requests', 'id', r.id, 'insert did not persist');
    return stored;
  }

  async findById(id: string): Promise<PermissionRequestRecord | undefined> {
    const row = await this.db
      .selectFrom('permission_requests')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  async setMessage(id: string, channelId: string, messageTs: string): Promise<void> {
    await this.db
      .updateTable('permission_requests')
      .set({ channel_id: channelId, message_ts: messageTs })
      .where('id', '=', id)
      .execute();
  }

  async decide(
    id: string,
    decision: PermissionDecision,
    decidedBy: string | null,
  ): Promise<PermissionRequestRecord | undefined> {
    const result = await this.db
      .updateTable('permission_requests')
      .set({ status: decision, decided_by: decidedBy, decided_at: this.now() })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    return this.findById(id);
  }

  async listPending(
    filter: { taskId?: string; taskIds?: readonly string[]; agentId?: string } = {},
  ): Promise<PermissionRequestRecord[]> {
    if (filter.taskIds?.length === 0) return [];
    let q = this.db.selectFrom('permission_requests').selectAll().where('status', '=', 'pending');
    if (filter.taskId !== undefined) q = q.where('task_id', '=', filter.taskId);
    if (filter.taskIds !== undefined) q = q.where('task_id', 'in', filter.taskIds);
    if (filter.agentId !== undefined) q = q.where('agent_id', '=', filter.agentId);
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    return rows.map(toRecord);
  }
}
