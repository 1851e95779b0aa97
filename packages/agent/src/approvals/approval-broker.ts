import { randomUUID } from 'node:crypto';
import type { PermissionDecision, PermissionRequest, PermissionResponse } from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { ApprovalRequest } from '../executor/executor.js';

interface Pending {
  taskId: string;
  resolve: (decision: PermissionDecision) => void;
}

export interface ApprovalBrokerOptions {
  /** Sends the request to the cloud now; rejects when the link is down (nothing is buffered). */
  send: (request: PermissionRequest) => Promise<void>;
  newRequestId?: () => string;
  logger?: Logger;
}

/**
 * The agent's half of an approval: sends PERMISSION_REQUEST and resolves when PERMISSION_RESPONSE comes back.
 * Fails closed: a request that cannot be sent, a lost connection or a cancelled task denies, so a task
 * never waits on an answer that cannot arrive.
 */
export class ApprovalBroker {
  private readonly pending = new Map<string, Pending>();
  private readonly log: Logger;
  private readonly newId: () => string;

  constructor(private readonly options: ApprovalBrokerOptions) {
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'approvals' });
    this.newId = options.newRequestId ?? (() => `perm_${randomUUID()}`);
  }

  ask(
    taskId: string,
    request: ApprovalRequest,
    signal: AbortSignal,
    attempt?: number,
  ): Promise<PermissionDecision> {
    if (signal.aborted) return Promise.resolve('cancelled');
    const requestId = this.newId();
    return new Promise<PermissionDecision>((resolve) => {
      const settle = (decision: PermissionDecision): void => {
        if (!this.pending.delete(requestId)) return;
        signal.removeEventListener('abort', onAbort);
        this.log.info({ taskId, requestId, tool: request.tool, decision }, 'permission answered');
        resolve(decision);
      };
      const onAbort = (): void => settle('cancelled');
      this.pending.set(requestId, { taskId, resolve: settle });
      signal.addEventListener('abort', onAbort, { once: true });
      const message: PermissionRequest = {
        taskId,
        requestId,
        ...request,
        ...(attempt !== undefined && { attempt }),
      };
      this.log.info(
        { taskId, requestId, tool: request.tool, reason: request.reason },
        'permission requested',
      );
      this.options.send(message).catch(() => settle('undeliverable'));
    });
  }

  /** Applies an answer from the cloud; false when no request with that id is waiting (late or foreign). */
  answer(response: PermissionResponse): boolean {
    const pending = this.pending.get(response.requestId);
    if (pending === undefined || pending.taskId !== response.taskId) return false;
    pending.resolve(response.decision);
    return true;
  }

  /** Denies everything waiting, e.g. when the link to the cloud is lost. */
  denyAll(decision: PermissionDecision): void {
    for (const p of [...this.pending.values()]) p.resolve(decision);
  }

  get waiting(): number {
    return this.pending.size;
  }
}
