import type { Kysely } from 'kysely';
import type { Schema } from '../schema.js';
import type { ConsoleCredentialKind, ConsoleCredentialRepository } from './types.js';

export class KyselyConsoleCredentialRepository implements ConsoleCredentialRepository {
  constructor(private readonly db: Kysely<Schema>) {}

  async put(kind: ConsoleCredentialKind, hash: string, expiresAt: number): Promise<void> {
    await this.db
      .insertInto('console_credentials')
      .values({ hash, kind, expires_at: expiresAt })
      .onConflict((oc) => oc.column('hash').doUpdateSet({ kind, expires_at: expiresAt }))
      .execute();
  }

  async consume(kind: ConsoleCredentialKind, hash: string, now: number): Promise<boolean> {
    const row = await this.db
      .deleteFrom('console_credentials')
      .where('hash', '=', hash)
      .where('kind', '=', kind)
      .returning('expires_at')
      .executeTakeFirst();
    return row !== undefined && Number(row.expires_at) > now;
  }

  async isValid(kind: ConsoleCredentialKind, hash: string, now: number): Promise<boolean> {
    const row = await this.db
      .selectFrom('console_credentials')
      .select('hash')
      .where('hash', '=', hash)
      .where('kind', '=', kind)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row !== undefined;
  }

  async remove(kind: ConsoleCredentialKind, hash: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom('console_credentials')
      .where('hash', '=', hash)
      .where('kind', '=', kind)
      .executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  async pruneExpired(now: number): Promise<number> {
    const res = await this.db
      .deleteFrom('console_credentials')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
