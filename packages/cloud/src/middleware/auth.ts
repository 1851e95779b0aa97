import type { Logger } from 'pino';
import type { AuditLogRepository, Role, UserRepository } from '../db/repositories/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import { type Middleware, rejectRequest } from './types.js';

export interface AuthConfig {
  /** Role given to people the first time they talk to the bot (default 'developer'). */
  defaultRole?: Role;
  /** People who are admins from their first message (bootstrap). */
  adminUserIds?: readonly string[];
}

/** Identifies the person; unknown people are registered with the default role. Fails closed. */
export function createAuthMiddleware(
  deps: { users: UserRepository; audit: AuditLogRepository; logger: Logger },
  config: AuthConfig = {},
): Middleware {
  const defaultRole = config.defaultRole ?? 'developer';
  const admins = new Set(config.adminUserIds ?? []);
  return {
    name: 'auth',
    async run(ctx, next) {
      const r = ctx.request;
      try {
        let user = await deps.users.findById(r.userId);
        if (!user) {
          const role: Role = admins.has(r.userId) ? 'admin' : defaultRole;
          user = await deps.users.upsert({ id: r.userId, name: r.userName ?? null, role });
          await deps.audit.log({
            action: 'user.registered',
            actor: r.userId,
            resourceType: 'user',
            resourceId: r.userId,
            details: { role },
          });
        }
        ctx.user = user;
      } catch (err) {
        deps.logger.error({ err, user: r.userId }, 'user lookup failed; denying request');
        await rejectRequest(
          ctx,
          deps.audit,
          'auth_unavailable',
          noticeMessage(
            "I couldn't verify your permissions right now, so I didn't run that. Please try again in a moment.",
            ':lock:',
          ),
          { error: err instanceof Error ? err.message : String(err) },
        );
        return;
      }
      await next();
    },
  };
}
