import type { Clock } from '@bematic/protocol';
import type { Kysely, Selectable } from 'kysely';
import type { AuditLogsTable, Schema } from '../schema.js';
import { decodeRecord, encodeJson } from './codec.js';
import { precompiled } from './precompiled.js';
import type { AuditEntry, AuditLogRepository, NewAuditEntry } from './types.js';

const DEFAULT_LIMIT = 100;

function toEntry(row: Selectable<AuditLogsTable>): AuditEntry {
  return {
    id: row.id,
    ts: row.ts,
    action: row.action,
    actor: row.actor,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    details: decodeRecord(row.details, { table: 'audit_logs', column: 'details', rowId: String(row.id) }),
  };
}

/** Written for most lifecycle steps; the parameters in this order. */
const INSERT_ENTRY = precompiled((db) =>
  db
    .insertInto('audit_logs')
    .values({ ts: 0, action: '', actor: '', resource_type: null, resource_id: null, details: '' })
    .returning('id'),
);

export class KyselyAuditLogRepository implements AuditLogRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async log(entry: NewAuditEntry): Promise<AuditEntry> {
    const values = {
      ts: entry.ts ?? this.now(),
      action: entry.action,
      actor: entry.actor,
      resource_type: entry.resourceType ?? null,
      resource_id: entry.resourceId ?? null,
      details: encodeJson(entry.details ?? {}),
    };
    // Only the id comes back: the rest is what was written (details as stored, read back through JSON).
    const { rows } = await INSERT_ENTRY(this.db, [
      values.ts,
      values.action,
      values.actor,
      values.resource_type,
      values.resource_id,
      values.details,
    ]);
    const id = rows[0]?.id;
    if (id === undefined) throw new Error('audit entry insert returned no id');
    return toEntry({ id, ...values });
  }

  /**
   * Many entries in one INSERT (the group commit's batch of audit entries). Ids are handed out in the order
   * of the rows, so the returned ids, sorted, belong to the entries in order.
   */
  static async logMany(
    db: Kysely<Schema>,
    entries: readonly NewAuditEntry[],
    now: Clock['now'] = Date.now,
  ): Promise<AuditEntry[]> {
    if (entries.length === 0) return [];
    const values = entries.map((entry) => ({
      ts: entry.ts ?? now(),
      action: entry.action,
      actor: entry.actor,
      resource_type: entry.resourceType ?? null,
      resource_id: entry.resourceId ?? null,
      details: encodeJson(entry.details ?? {}),
    }));
    const rows = await db.insertInto('audit_logs').values(values).returning('id').execute();
    const ids = rows.map((r) => r.id).sort((a, b) => a - b);
    if (ids.length !== values.length) throw new Error('audit insert returned fewer ids than rows');
    return values.map((v, i) => toEntry({ id: ids[i] as number, ...v }));
  }

  /** Newest first; at most `limit` (default 100) entries. */
  async list(
    query: { action?: string; resourceId?: string; actor?: string; limit?: number } = {},
  ): Promise<AuditEntry[]> {
    let q = this.db.selectFrom('audit_logs').selectAll();
    if (query.action !== undefined) q = q.where('action', '=', query.action);
    if (query.resourceId !== undefined) q = q.where('resource_id', '=', query.resourceId);
    if (query.actor !== undefined) q = q.where('actor', '=', query.actor);
    const rows = await q
      .orderBy('ts', 'desc')
      .orderBy('id', 'desc')
      .limit(query.limit ?? DEFAULT_LIMIT)
      .execute();
    return rows.map(toEntry);
  }
}
