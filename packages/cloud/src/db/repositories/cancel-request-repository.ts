import type { Clock } from '@bematic/protocol';
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.js';
import type { CancelRequest, CancelRequestRepository } from './types.js';

export class KyselyCancelRequestRepository implements CancelRequestRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async put(taskId: string, reason: string, actor: string): Promise<void> {
    const requested_at = this.now();
    await this.db
      .insertInto('cancel_requests')
      .values({ task_id: taskId, reason, actor, requested_at })
      .onConflict((oc) => oc.column('task_id').doUpdateSet({ reason, actor, requested_at }))
      .execute();
  }

  async find(taskId: string): Promise<CancelRequest | undefined> {
    const row = await this.db
      .selectFrom('cancel_requests')
      .selectAll()
      .where('task_id', '=', taskId)
      .executeTakeFirst();
    return (
      row && { taskId: row.task_id, reason: row.reason, actor: row.actor, requestedAt: row.requested_at }
    );
  }

  async remove(taskId: string): Promise<boolean> {
    const res = await this.db.deleteFrom('cancel_requests').where('task_id', '=', taskId).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }
}
