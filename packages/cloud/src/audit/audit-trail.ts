import { type Logger, pino } from 'pino';
import type { AuditEntry, AuditLogRepository, NewAuditEntry } from '../db/repositories/types.js';
import type { TaskEventMap, TaskEventName, TaskEvents } from '../tasks/task-events.js';

/** Every action the cloud writes to the audit log. */
export const AUDIT_ACTIONS = [
  'task.created',
  'task.submitted',
  'task.queued',
  'task.started',
  'task.completed',
  'task.failed',
  'task.cancelled',
  'task.archived',
  'task.restored',
  'task.expired',
  'task.retried',
  'agent.connected',
  'agent.disconnected',
  'agent.auth_failed',
  'agent.overloaded',
  'circuit.changed',
  'protocol.invalid_frame',
  'project.registered',
  'project.updated',
  'project.removed',
  'key.created',
  'key.revoked',
  'user.role_changed',
  'command.denied',
  'command.invalid',
  'rate_limited',
  'http.bad_request',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditRecord {
  actor: string;
  resourceType?: string | null;
  resourceId?: string | null;
  details?: Record<string, unknown>;
  ts?: number;
}

/** The lifecycle events `attachToEvents` can record, and the action each becomes. */
export const EVENT_ACTIONS = {
  'task.created': 'task.created',
  'task.submitted': 'task.submitted',
  'task.queued': 'task.queued',
  'task.started': 'task.started',
  'task.completed': 'task.completed',
  'task.failed': 'task.failed',
  'task.cancelled': 'task.cancelled',
  'agent.online': 'agent.connected',
  'agent.offline': 'agent.disconnected',
  'circuit.changed': 'circuit.changed',
} as const satisfies Partial<Record<TaskEventName, AuditAction>>;
export type AuditedEvent = keyof typeof EVENT_ACTIONS;

/**
 * A thin, typed face over AuditLogRepository. Writing an audit entry must
 * never break the operation being audited, so `record` logs and swallows
 * storage failures; use `entry` + a transaction's repository when the entry
 * must commit together with the change (as archiving does).
 */
export class AuditTrail {
  private readonly logger: Logger;

  constructor(
    private readonly repo: AuditLogRepository,
    opts: { logger?: Logger } = {},
  ) {
    this.logger = opts.logger ?? pino({ level: 'silent' });
  }

  /** Build a repository entry for a typed action. */
  static entry(action: AuditAction, r: AuditRecord): NewAuditEntry {
    return {
      action,
      actor: r.actor,
      resourceType: r.resourceType ?? null,
      resourceId: r.resourceId ?? null,
      details: r.details ?? {},
      ...(r.ts !== undefined ? { ts: r.ts } : {}),
    };
  }

  async record(action: AuditAction, r: AuditRecord): Promise<AuditEntry | undefined> {
    try {
      return await this.repo.log(AuditTrail.entry(action, r));
    } catch (err) {
      this.logger.error({ err, action, resourceId: r.resourceId }, 'audit entry could not be written');
      return undefined;
    }
  }

  list(query?: Parameters<AuditLogRepository['list']>[0]): Promise<AuditEntry[]> {
    return this.repo.list(query);
  }

  /**
   * Record the chosen lifecycle events. Opt-in per event, so that components
   * which already audit an action themselves (e.g. the lifecycle writing
   * 'task.completed' in its transaction) are not logged twice.
   */
  attachToEvents(events: TaskEvents, which: readonly AuditedEvent[]): () => void {
    const offs = which.map((name) =>
      events.on(name, (payload: TaskEventMap[typeof name]) => {
        void this.record(EVENT_ACTIONS[name], describeEvent(name, payload));
      }),
    );
    return () => {
      for (const off of offs) off();
    };
  }
}

function describeEvent<E extends AuditedEvent>(name: E, payload: TaskEventMap[E]): AuditRecord {
  const p = payload as TaskEventMap[AuditedEvent];
  if ('task' in p) {
    const { task } = p;
    const details: Record<string, unknown> = {
      status: task.status,
      agentId: task.agentId,
      projectId: task.projectId,
    };
    if (name === 'task.queued' && 'reason' in p) details.reason = p.reason;
    if ('message' in p) {
      const m = p.message;
      if ('errorCode' in m)
        Object.assign(details, { errorCode: m.errorCode, error: m.error, recoverable: m.recoverable });
      if ('reason' in m && m.reason !== undefined) details.reason = m.reason;
      if (m.metrics) details.costUsd = m.metrics.costUsd;
    }
    return { actor: task.userId, resourceType: 'task', resourceId: task.id, details };
  }
  const details: Record<string, unknown> = {};
  if ('reason' in p) details.reason = p.reason;
  if ('from' in p) Object.assign(details, { from: p.from, to: p.to });
  return { actor: 'system', resourceType: 'agent', resourceId: p.agentId, details };
}
