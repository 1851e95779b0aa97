import type { Logger } from 'pino';
import type { AuditLogRepository, ProjectRepository } from '../db/repositories/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import { type Middleware, rejectRequest } from './types.js';

export const PROJECT_HOW_TO =
  "This channel isn't linked to a project yet. An admin can run `/bm projects add <agent-id> <path>` here.";

/** Finds the channel's project; requests that start work need one, slash commands do not. */
export function createProjectMiddleware(deps: {
  projects: ProjectRepository;
  audit: AuditLogRepository;
  logger: Logger;
}): Middleware {
  return {
    name: 'project',
    async run(ctx, next) {
      const r = ctx.request;
      const needsProject = r.kind === 'mention' || r.kind === 'thread_reply';
      try {
        ctx.project = (await deps.projects.findByChannel(r.channelId)) ?? null;
      } catch (err) {
        deps.logger.error({ err, channel: r.channelId }, 'project lookup failed');
        if (needsProject) {
          await rejectRequest(
            ctx,
            deps.audit,
            'project_unavailable',
            noticeMessage(
              "I couldn't look up this channel's project right now. Please try again in a moment.",
              ':warning:',
            ),
          );
          return;
        }
      }
      if (needsProject && !ctx.project) {
        await rejectRequest(ctx, deps.audit, 'unknown_project', noticeMessage(PROJECT_HOW_TO, ':link:'));
        return;
      }
      await next();
    },
  };
}
