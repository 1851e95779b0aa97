import type { Clock } from '@bematic/protocol';
import { type Kysely, type Selectable, sql } from 'kysely';
import { StoredDataError } from '../errors.js';
import type { AgentsTable, Schema } from '../schema.js';
import { containsPattern, TEXT_SCAN_ROWS } from './text-match.js';
import {
  AGENT_HEALTH,
  AGENT_STATUSES,
  type AgentCounts,
  type AgentHealth,
  type AgentListingPage,
  type AgentListingQuery,
  type AgentPosition,
  type AgentPresenceHealth,
  type AgentRecord,
  type AgentRepository,
} from './types.js';

const isAgentStatus = (s: string): s is AgentRecord['status'] =>
  (AGENT_STATUSES as readonly string[]).includes(s);
const isHealth = (s: string): s is AgentHealth => (AGENT_HEALTH as readonly string[]).includes(s);

function healthOf(row: Selectable<AgentsTable>): AgentPresenceHealth | null {
  if (row.health === null || row.instance_id === null) return null;
  if (!isHealth(row.health))
    throw new StoredDataError('agents', 'health', row.id, `unknown health ${row.health}`);
  return { health: row.health, activeTasks: row.active_tasks, maxConcurrentTasks: row.max_concurrent_tasks };
}

const NO_HEALTH = { health: null, active_tasks: null, max_concurrent_tasks: null } as const;

const positionOf = (a: AgentRecord): AgentPosition => ({ online: a.status === 'online', id: a.id });

function toAgent(row: Selectable<AgentsTable>): AgentRecord {
  if (!isAgentStatus(row.status))
    throw new StoredDataError('agents', 'status', row.id, `unknown status ${row.status}`);
  return {
    id: row.id,
    hostname: row.hostname,
    version: row.version,
    status: row.status,
    lastSeenAt: row.last_seen_at,
    createdAt: row.created_at,
    instanceId: row.instance_id,
    health: healthOf(row),
  };
}

export class KyselyAgentRepository implements AgentRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  /** Creates or updates; fields left undefined keep their stored values. */
  async upsert(a: {
    id: string;
    hostname?: string | null;
    version?: string | null;
    status: AgentRecord['status'];
    lastSeenAt?: number;
  }): Promise<AgentRecord> {
    const row = await this.db
      .insertInto('agents')
      .values({
        id: a.id,
        hostname: a.hostname ?? null,
        version: a.version ?? null,
        status: a.status,
        last_seen_at: a.lastSeenAt ?? null,
        created_at: this.now(),
      })
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({
          status: a.status,
          ...(a.hostname !== undefined ? { hostname: a.hostname } : {}),
          ...(a.version !== undefined ? { version: a.version } : {}),
          ...(a.lastSeenAt !== undefined ? { last_seen_at: a.lastSeenAt } : {}),
        }),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return toAgent(row);
  }

  async findById(id: string): Promise<AgentRecord | undefined> {
    const row = await this.db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toAgent(row);
  }

  async list(): Promise<AgentRecord[]> {
    return (await this.db.selectFrom('agents').selectAll().orderBy('id').execute()).map(toAgent);
  }

  /**
   * At most one ordered range of the (status, id) index per status, starting at the cursor: a page reads
   * about `limit` rows however many agents there are. A text search tests at most `scanLimit` agents per
   * status and says where it stopped, as the task search does.
   */
  async page(q: AgentListingQuery): Promise<AgentListingPage> {
    const rows: AgentRecord[] = [];
    const afterRank = q.after ? AGENT_STATUSES.indexOf(q.after.online ? 'online' : 'offline') : -1;
    for (const [rank, status] of AGENT_STATUSES.entries()) {
      if ((q.status && q.status !== status) || rank < afterRank) continue;
      const want = q.limit + 1 - rows.length;
      let query = this.db.selectFrom('agents').selectAll().where('status', '=', status);
      if (q.after && rank === afterRank) query = query.where('id', '>', q.after.id);
      let frontier: string | undefined;
      if (q.text) {
        const edge = await query
          .clearSelect()
          .select('id')
          .orderBy('id')
          .limit(1)
          .offset(Math.max(want, q.scanLimit ?? TEXT_SCAN_ROWS) - 1)
          .executeTakeFirst();
        if (edge) {
          frontier = edge.id;
          query = query.where('id', '<=', edge.id);
        }
        const pattern = containsPattern(q.text);
        query = query.where(
          sql<boolean>`(lower(id) like ${pattern} escape '\\' or lower(coalesce(hostname, '')) like ${pattern} escape '\\')`,
        );
      }
      rows.push(...(await query.orderBy('id').limit(want).execute()).map(toAgent));
      if (rows.length > q.limit) break;
      // The scan stopped before the end of this status: the next page resumes after what it read.
      if (frontier !== undefined) return { rows, next: { online: status === 'online', id: frontier } };
    }
    if (rows.length <= q.limit) return { rows, next: null };
    const page = rows.slice(0, q.limit);
    return { rows: page, next: positionOf(page[page.length - 1] as AgentRecord) };
  }

  async counts(): Promise<AgentCounts> {
    const rows = await this.db
      .selectFrom('agents')
      .select(({ fn }) => ['status', fn.countAll().as('n')])
      .groupBy('status')
      .execute();
    const of = (status: AgentRecord['status']) => Number(rows.find((r) => r.status === status)?.n ?? 0);
    return { online: of('online'), offline: of('offline'), total: rows.reduce((n, r) => n + Number(r.n), 0) };
  }

  async claim(
    id: string,
    instanceId: string,
    seenAt: number,
    health?: AgentPresenceHealth | null,
  ): Promise<void> {
    await this.db
      .updateTable('agents')
      .set({
        instance_id: instanceId,
        status: 'online',
        last_seen_at: seenAt,
        ...(health === undefined
          ? {}
          : health === null
            ? NO_HEALTH
            : {
                health: health.health,
                active_tasks: health.activeTasks,
                max_concurrent_tasks: health.maxConcurrentTasks,
              }),
      })
      .where('id', '=', id)
      .execute();
  }

  async release(id: string, instanceId: string): Promise<void> {
    await this.db
      .updateTable('agents')
      .set({ instance_id: null, status: 'offline', ...NO_HEALTH })
      .where('id', '=', id)
      .where('instance_id', '=', instanceId)
      .execute();
  }

  async releaseAllBut(liveInstanceIds: string[]): Promise<string[]> {
    let q = this.db
      .updateTable('agents')
      .set({ instance_id: null, status: 'offline', ...NO_HEALTH })
      .where('instance_id', 'is not', null);
    if (liveInstanceIds.length > 0) q = q.where('instance_id', 'not in', liveInstanceIds);
    return (await q.returning('id').execute()).map((r) => r.id);
  }
}
