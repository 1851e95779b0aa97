import type { Kysely } from 'kysely';
import type { Schema } from '../schema.js';
import { KyselyAgentRepository } from './agent-repository.js';
import { KyselyApiKeyRepository } from './api-key-repository.js';
import { KyselyArchivedTaskRepository } from './archived-task-repository.js';
import { KyselyAuditLogRepository } from './audit-log-repository.js';
import { KyselyOfflineQueueRepository } from './offline-queue-repository.js';
import { KyselyProjectRepository } from './project-repository.js';
import { KyselySessionRepository } from './session-repository.js';
import { KyselyTaskRepository } from './task-repository.js';
import { inTransaction } from './transaction.js';
import type { Repositories } from './types.js';
import { KyselyUserRepository } from './user-repository.js';

function bind(db: Kysely<Schema>): Omit<Repositories, 'transaction'> {
  return {
    projects: new KyselyProjectRepository(db),
    tasks: new KyselyTaskRepository(db),
    sessions: new KyselySessionRepository(db),
    users: new KyselyUserRepository(db),
    audit: new KyselyAuditLogRepository(db),
    offlineQueue: new KyselyOfflineQueueRepository(db),
    apiKeys: new KyselyApiKeyRepository(db),
    archivedTasks: new KyselyArchivedTaskRepository(db),
    agents: new KyselyAgentRepository(db),
  };
}

/**
 * Repositories over one database. Inside `transaction(fn)` use only the
 * repositories handed to fn: on SQLite the outer ones wait for the single
 * connection the transaction holds.
 */
export function createRepositories(db: Kysely<Schema>): Repositories {
  return {
    ...bind(db),
    transaction: (fn) => inTransaction(db, (trx) => fn(bind(trx))),
  };
}

export {
  KyselyAgentRepository,
  KyselyApiKeyRepository,
  KyselyArchivedTaskRepository,
  KyselyAuditLogRepository,
  KyselyOfflineQueueRepository,
  KyselyProjectRepository,
  KyselySessionRepository,
  KyselyTaskRepository,
  KyselyUserRepository,
};
