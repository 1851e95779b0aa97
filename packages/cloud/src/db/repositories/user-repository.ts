import type { Clock } from '@bematic/protocol';
import type { Kysely, Selectable } from 'kysely';
import { RecordNotFoundError, StoredDataError } from '../errors.js';
import type { Schema, UsersTable } from '../schema.js';
import type { Role, User, UserRepository } from './types.js';

const ROLES: readonly Role[] = ['admin', 'developer', 'viewer'];
const isRole = (s: string): s is Role => (ROLES as readonly string[]).includes(s);

function toUser(row: Selectable<UsersTable>): User {
  if (!isRole(row.role)) throw new StoredDataError('users', 'role', row.id, `unknown role ${row.role}`);
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    defaultProjectId: row.default_project_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class KyselyUserRepository implements UserRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async findById(id: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toUser(row);
  }

  /** Creates or updates; a missing `name` keeps the stored one. */
  async upsert(user: { id: string; name?: string | null; role: Role }): Promise<User> {
    const now = this.now();
    const row = await this.db
      .insertInto('users')
      .values({
        id: user.id,
        name: user.name ?? null,
        role: user.role,
        default_project_id: null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({
          role: user.role,
          updated_at: now,
          ...(user.name !== undefined ? { name: user.name } : {}),
        }),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return toUser(row);
  }

  async setRole(id: string, role: Role): Promise<User> {
    const row = await this.db
      .updateTable('users')
      .set({ role, updated_at: this.now() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new RecordNotFoundError('user', id);
    return toUser(row);
  }

  async setDefaultProject(id: string, projectId: string | null): Promise<User> {
    const row = await this.db
      .updateTable('users')
      .set({ default_project_id: projectId, updated_at: this.now() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new RecordNotFoundError('user', id);
    return toUser(row);
  }

  async list(): Promise<User[]> {
    return (await this.db.selectFrom('users').selectAll().orderBy('id').execute()).map(toUser);
  }
}
