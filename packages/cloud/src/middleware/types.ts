import type { ChatMessage } from '../chat/chat-surface.js';
import type { InboundRequest } from '../chat/inbound.js';
import type { AuditLogRepository, Project, User } from '../db/repositories/types.js';

/** What the middleware chain learns about a request on its way to the command service. */
export interface RequestContext {
  request: InboundRequest;
  requestId: string;
  /** Set by auth. */
  user: User | null;
  /** Set by the project stage when the channel is linked to one. */
  project: Project | null;
  /** Incremented by the command service for each task it creates (rate limiting counts these). */
  tasksCreated: number;
  rejection: { code: string; message: string } | null;
}

export type Next = () => Promise<void>;

export interface Middleware {
  readonly name: string;
  run(ctx: RequestContext, next: Next): Promise<void>;
}

/** Per-stage timing hook for metrics: own time of each stage, excluding the stages after it. */
export type StageObserver = (stage: string, ms: number) => void;

export function newContext(request: InboundRequest, requestId: string): RequestContext {
  return { request, requestId, user: null, project: null, tasksCreated: 0, rejection: null };
}

/** Tells the person why their request was refused and records it; never throws. */
export async function rejectRequest(
  ctx: RequestContext,
  audit: AuditLogRepository,
  code: string,
  message: ChatMessage,
  details: Record<string, unknown> = {},
): Promise<void> {
  ctx.rejection = { code, message: message.text };
  const r = ctx.request;
  await audit
    .log({
      action: 'request.rejected',
      actor: r.userId,
      resourceType: 'channel',
      resourceId: r.channelId,
      details: {
        code,
        kind: r.kind,
        text: r.text.slice(0, 500),
        reason: message.text,
        requestId: ctx.requestId,
        ...details,
      },
    })
    .catch(() => {});
  await r.respond(message).catch(() => {});
}

/** Requests that create a task; only these count towards the rate limit. */
export function createsTask(request: InboundRequest): boolean {
  return (
    request.kind === 'mention' ||
    request.kind === 'thread_reply' ||
    (request.kind === 'action' && request.text === 'task_retry')
  );
}
