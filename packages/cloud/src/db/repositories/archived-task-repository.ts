import type { Clock } from '@bematic/protocol';
import { type Kysely, type Selectable, sql } from 'kysely';
import { guardUnique } from '../errors.js';
import { newArchiveId } from '../ids.js';
import type { ArchivedTasksTable, Schema } from '../schema.js';
import { decodeRecord, encodeJson } from './codec.js';
import type { ArchivedTask, ArchivedTaskRepository } from './types.js';

function toArchive(row: Selectable<ArchivedTasksTable>): ArchivedTask {
  return {
    id: row.id,
    originalId: row.original_id,
    taskData: row.task_data,
    reason: row.reason,
    metadata: decodeRecord(row.metadata, { table: 'archived_tasks', column: 'metadata', rowId: row.id }),
    archivedAt: row.archived_at,
  };
}

export class KyselyArchivedTaskRepository implements ArchivedTaskRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  /** A generated id is `archive_…` (see ids.ts). */
  async create(
    a: Omit<ArchivedTask, 'id' | 'archivedAt'> & { id?: string; archivedAt?: number },
  ): Promise<ArchivedTask> {
    const row = await guardUnique('archive', a.id ?? a.originalId, () =>
      this.db
        .insertInto('archived_tasks')
        .values({
          id: a.id ?? newArchiveId(),
          original_id: a.originalId,
          task_data: a.taskData,
          reason: a.reason,
          metadata: encodeJson(a.metadata),
          archived_at: a.archivedAt ?? this.now(),
        })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return toArchive(row);
  }

  async findById(id: string): Promise<ArchivedTask | undefined> {
    const row = await this.db
      .selectFrom('archived_tasks')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toArchive(row);
  }

  /** The latest archive of that task (a restored task archived again has several). */
  async findByOriginalId(originalId: string): Promise<ArchivedTask | undefined> {
    const row = await this.db
      .selectFrom('archived_tasks')
      .selectAll()
      .where('original_id', '=', originalId)
      .orderBy('archived_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    return row && toArchive(row);
  }

  /** Newest first. */
  async list(limit?: number): Promise<ArchivedTask[]> {
    let q = this.db
      .selectFrom('archived_tasks')
      .selectAll()
      .orderBy('archived_at', 'desc')
      .orderBy('id', 'desc');
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map(toArchive);
  }

  /** From the counter the database keeps (migration 016), not a count of the rows. */
  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('archive_totals')
      .select(sql<number>`coalesce(sum(archives), 0)`.as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('archived_tasks').where('id', '=', id).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }
}
