import type { Clock } from '@bematic/protocol';
import type { Kysely } from 'kysely';
import { dialectOf } from '../database.js';
import type { Schema } from '../schema.js';
import { KyselyAgentRepository } from './agent-repository.js';
import { KyselyApiKeyRepository } from './api-key-repository.js';
import { KyselyArchivedTaskRepository } from './archived-task-repository.js';
import { KyselyAuditLogRepository } from './audit-log-repository.js';
import { KyselyCancelRequestRepository } from './cancel-request-repository.js';
import { KyselyConsoleCredentialRepository } from './console-credential-repository.js';
import { KyselyConsoleMessageRepository } from './console-message-repository.js';
import { GroupCommit } from './group-commit.js';
import { KyselyOfflineQueueRepository } from './offline-queue-repository.js';
import { KyselyPermissionRequestRepository } from './permission-request-repository.js';
import { KyselyProjectRepository } from './project-repository.js';
import { KyselySessionRepository } from './session-repository.js';
import { KyselySlackDeliveryRepository } from './slack-delivery-repository.js';
import { KyselyTaskPlanRepository } from './task-plan-repository.js';
import { KyselyTaskRepository } from './task-repository.js';
import { KyselyTaskSearchRepository } from './task-search-repository.js';
import { KyselyTaskStepRepository } from './task-step-repository.js';
import { inTransaction } from './transaction.js';
import type { NewAuditEntry, Repositories, StartRequest } from './types.js';

export interface RepositoryOptions {
  /** Source of every timestamp the repositories set themselves (default Date.now). */
  now?: Clock['now'];
}

import { KyselyUserRepository } from './user-repository.js';

function bind(db: Kysely<Schema>, now: Clock['now']): Omit<Repositories, 'transaction'> {
  return {
    projects: new KyselyProjectRepository(db, now),
    tasks: new KyselyTaskRepository(db, now),
    sessions: new KyselySessionRepository(db, now),
    users: new KyselyUserRepository(db, now),
    audit: new KyselyAuditLogRepository(db, now),
    offlineQueue: new KyselyOfflineQueueRepository(db, now),
    apiKeys: new KyselyApiKeyRepository(db, now),
    archivedTasks: new KyselyArchivedTaskRepository(db, now),
    agents: new KyselyAgentRepository(db, now),
    taskSteps: new KyselyTaskStepRepository(db, now),
    taskSearch: new KyselyTaskSearchRepository(db),
    consoleMessages: new KyselyConsoleMessageRepository(db),
    permissionRequests: new KyselyPermissionRequestRepository(db, now),
    slackDeliveries: new KyselySlackDeliveryRepository(db, now),
    taskPlans: new KyselyTaskPlanRepository(db, now),
    cancelRequests: new KyselyCancelRequestRepository(db, now),
    consoleCredentials: new KyselyConsoleCredentialRepository(db),
  };
}

/**
 * Repositories over one database. Inside `transaction(fn)` use only the
 * repositories handed to fn: on SQLite the outer ones wait for the single
 * connection the transaction holds, and a `transaction` asked for from inside
 * one waits for a commit that cannot come (group commit, see group-commit.ts).
 */
export function createRepositories(db: Kysely<Schema>, opts: RepositoryOptions = {}): Repositories {
  const now = opts.now ?? Date.now;
  // Already inside a transaction: join it. Otherwise the transactions of one tick share a commit.
  const group = db.isTransaction ? null : new GroupCommit(db, { savepoints: dialectOf(db) === 'sqlite' });
  const top = bind(db, now);
  if (group) groupWrites(top, group, now);
  return {
    ...top,
    transaction: (fn) =>
      group ? group.run((trx) => fn(bind(trx, now))) : inTransaction(db, (trx) => fn(bind(trx, now))),
  };
}

/**
 * The single-statement writes the lifecycle makes many of outside any transaction of its own (audit entries,
 * transcript steps, outbox removals, console messages) join the tick's group commit instead of committing
 * one by one; each caller still resumes only once its write is committed.
 */
function groupWrites(top: Omit<Repositories, 'transaction'>, group: GroupCommit, now: Clock['now']): void {
  const steps = (trx: Kysely<Schema>) => new KyselyTaskStepRepository(trx, now);
  const messages = (trx: Kysely<Schema>) => new KyselyConsoleMessageRepository(trx);
  // Audit entries of one batch go in one multi-row INSERT.
  top.audit.log = group.collector((trx, entries: readonly NewAuditEntry[]) =>
    KyselyAuditLogRepository.logMany(trx, entries, now),
  );
  // The starts of one batch (every TASK_ACK of a tick) in one UPDATE and one INSERT of their sessions.
  const start = group.collector((trx, requests: ReadonlyArray<StartRequest>) =>
    KyselyTaskRepository.startMany(trx, requests),
  );
  top.tasks.start = (id, guard, at) => start({ id, guard, at });
  top.taskSteps.append = (step) => group.run((trx) => steps(trx).append(step));
  top.taskSteps.appendText = (taskId, text) => group.run((trx) => steps(trx).appendText(taskId, text));
  top.taskSteps.mergeDetail = (taskId, toolUseId, detail) =>
    group.run((trx) => steps(trx).mergeDetail(taskId, toolUseId, detail));
  // Removals by task id of one batch in one DELETE; each caller learns whether its row was there (an id
  // asked for twice: the first caller).
  const removals = (table: 'offline_queue' | 'cancel_requests') =>
    group.collector(async (trx, ids: readonly string[]) => {
      const rows = await trx
        .deleteFrom(table)
        .where('task_id', 'in', [...new Set(ids)])
        .returning('task_id')
        .execute();
      const gone = new Set(rows.map((r) => r.task_id));
      return ids.map((id) => gone.delete(id));
    });
  top.offlineQueue.removeByTask = removals('offline_queue');
  top.cancelRequests.remove = removals('cancel_requests');
  top.consoleMessages.insert = (m) => group.run((trx) => messages(trx).insert(m));
  top.consoleMessages.update = (...args) => group.run((trx) => messages(trx).update(...args));
}

export {
  KyselyAgentRepository,
  KyselyApiKeyRepository,
  KyselyArchivedTaskRepository,
  KyselyAuditLogRepository,
  KyselyCancelRequestRepository,
  KyselyConsoleMessageRepository,
  KyselyOfflineQueueRepository,
  KyselyPermissionRequestRepository,
  KyselyProjectRepository,
  KyselySessionRepository,
  KyselySlackDeliveryRepository,
  KyselyTaskPlanRepository,
  KyselyTaskRepository,
  KyselyTaskSearchRepository,
  KyselyTaskStepRepository,
  KyselyUserRepository,
};
