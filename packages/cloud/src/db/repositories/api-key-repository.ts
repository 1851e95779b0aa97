import type { Clock } from '@bematic/protocol';
import type { Kysely, Selectable } from 'kysely';
import { guardUnique } from '../errors.js';
import { newApiKeyId } from '../ids.js';
import type { ApiKeysTable, Schema } from '../schema.js';
import type { ApiKey, ApiKeyRepository } from './types.js';

function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    agentId: row.agent_id,
    prefix: row.prefix,
    keyHash: row.key_hash,
    label: row.label,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export class KyselyApiKeyRepository implements ApiKeyRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async create(
    k: Omit<ApiKey, 'id' | 'createdAt' | 'revokedAt' | 'lastUsedAt'> & { id?: string },
  ): Promise<ApiKey> {
    const row = await guardUnique('api key', k.id ?? k.prefix, () =>
      this.db
        .insertInto('api_keys')
        .values({
          id: k.id ?? newApiKeyId(),
          agent_id: k.agentId,
          prefix: k.prefix,
          key_hash: k.keyHash,
          label: k.label,
          created_at: this.now(),
          expires_at: k.expiresAt,
          revoked_at: null,
          last_used_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return toApiKey(row);
  }

  /** Every key with this prefix, revoked and expired ones included: the caller decides. */
  async findByPrefix(prefix: string): Promise<ApiKey[]> {
    const rows = await this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('prefix', '=', prefix)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toApiKey);
  }

  async list(agentId?: string): Promise<ApiKey[]> {
    let q = this.db.selectFrom('api_keys').selectAll();
    if (agentId !== undefined) q = q.where('agent_id', '=', agentId);
    return (await q.orderBy('created_at').orderBy('id').execute()).map(toApiKey);
  }

  /** true when this call revoked the key; false when unknown or already revoked (the first revocation time stays). */
  async revoke(id: string, at: number): Promise<boolean> {
    const res = await this.db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return res.numUpdatedRows > 0n;
  }

  async touch(id: string, at: number): Promise<void> {
    await this.db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
  }
}
