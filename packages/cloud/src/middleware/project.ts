import type { Logger } from 'pino';
import type { AuditLogRepository, Project, ProjectRepository } from '../db/repositories/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import { type Middleware, type RequestContext, rejectRequest } from './types.js';

export const PROJECT_HOW_TO =
  "This channel isn't linked to a project yet. An admin can run `/bm projects add <agent-id> <path>` here.";
export const DM_PROJECT_HOW_TO =
  "Which project should I work on? Run `/bm projects default` in that project's channel, then message me here again.";

/**
 * A direct message works against the person's default project; with a single project, that one.
 */
async function directProject(ctx: RequestContext, projects: ProjectRepository): Promise<Project | null> {
  const chosen = ctx.user?.defaultProjectId;
  if (chosen) {
    const project = await projects.findById(chosen);
    if (project) return project;
  }
  const all = await projects.list();
  return all.length === 1 ? (all[0] ?? null) : null;
}

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
        ctx.project =
          (await deps.projects.findByChannel(r.channelId)) ??
          (r.direct ? await directProject(ctx, deps.projects) : null);
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
        await rejectRequest(
          ctx,
          deps.audit,
          'unknown_project',
          noticeMessage(r.direct ? DM_PROJECT_HOW_TO : PROJECT_HOW_TO, ':link:'),
        );
        return;
      }
      await next();
    },
  };
}
