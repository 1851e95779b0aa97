import type { Clock } from '@bematic/protocol';
import type { Kysely } from 'kysely';
import type { Schema } from '../schema.js';
import type { SlackDeliveryRepository } from './types.js';

export class KyselySlackDeliveryRepository implements SlackDeliveryRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async claim(id: string, kind: string): Promise<boolean> {
    const result = await this.db
      .insertInto('slack_deliveries')
      .values({ id, kind, received_at: this.now() })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async release(id: string): Promise<void> {
    await this.db.deleteFrom('slack_deliveries').where('id', '=', id).execute();
  }

  async pruneBefore(before: number): Promise<number> {
    const result = await this.db
      .deleteFrom('slack_deliveries')
      .where('received_at', '<', before)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
