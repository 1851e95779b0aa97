import { TASK_STATUSES, type TaskStatus } from '@bematic/protocol';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AGENT_STATUSES } from '../../db/repositories/types.js';
import { HttpError, validate } from '../http-error.js';
import type { RouteContext } from '../http-server.js';
import { TASK_ACTIONS } from '../task-actions.js';

const ListTasksQuery = z.object({
  status: z
    .string()
    .optional()
    .transform((s) => (s ? s.split(',').filter(Boolean) : undefined))
    .pipe(z.array(z.enum(TASK_STATUSES)).optional()),
  project: z.string().min(1).max(200).optional(),
  user: z.string().min(1).max(200).optional(),
  bot: z.string().min(1).max(100).optional(),
  from: z.coerce.number().int().min(0).optional(),
  to: z.coerce.number().int().min(0).optional(),
  q: z.string().trim().max(200).optional(),
  cursor: z.string().max(400).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
const ListAgentsQuery = z.object({
  status: z.enum(AGENT_STATUSES).optional(),
  q: z.string().trim().max(200).optional(),
  cursor: z.string().max(400).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
const CostQuery = z.object({
  by: z.enum(['day', 'project', 'user']).default('day'),
  days: z.coerce.number().int().min(1).max(90).default(14),
  /** The browser's Date#getTimezoneOffset(), so days are the viewer's days (every zone's is whole quarter-hours). */
  tz: z.coerce.number().int().min(-840).max(840).multipleOf(15).default(0),
});
const TaskActionBody = z.object({ action: z.enum(TASK_ACTIONS) });
const AuditQuery = z.object({
  action: z.string().max(100).optional(),
  actor: z.string().max(200).optional(),
  resourceId: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/** Read-only JSON for the dashboard: tasks, agents, totals, projects, audit. */
export function registerApiRoutes(
  app: FastifyInstance,
  { deps, reads, taskActions, threadLink }: RouteContext,
): void {
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.url.startsWith('/api/')) void reply.header('cache-control', 'no-store');
    return payload;
  });

  app.get('/api/tasks', async (req) => {
    const q = validate(ListTasksQuery, req.query, 'INVALID_QUERY');
    return reads.listTasks({
      limit: q.limit,
      ...(q.status ? { status: q.status as TaskStatus[] } : {}),
      ...(q.project ? { projectId: q.project } : {}),
      ...(q.user ? { userId: q.user } : {}),
      ...(q.bot ? { botName: q.bot } : {}),
      ...(q.from !== undefined ? { from: q.from } : {}),
      ...(q.to !== undefined ? { to: q.to } : {}),
      ...(q.q ? { text: q.q } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}),
    });
  });

  app.get<{ Params: { id: string } }>('/api/tasks/:id/detail', async (req) => {
    const detail = await reads.taskDetail(req.params.id, threadLink);
    if (!detail) throw new HttpError(404, 'TASK_NOT_FOUND', `task ${req.params.id} not found`);
    return detail;
  });

  app.post<{ Params: { id: string } }>('/api/tasks/:id/actions', async (req) => {
    const { action } = validate(TaskActionBody, req.body, 'INVALID_BODY');
    const task = await deps.repos.tasks.findById(req.params.id);
    if (!task) throw new HttpError(404, 'TASK_NOT_FOUND', `task ${req.params.id} not found`);
    return { ok: true, ...(await taskActions.run(task, action)) };
  });

  app.get('/api/costs', async (req) => {
    const q = validate(CostQuery, req.query, 'INVALID_QUERY');
    return { by: q.by, days: q.days, buckets: await reads.costs(q.by, q.days, q.tz) };
  });

  app.get<{ Params: { id: string } }>('/api/tasks/:id', async (req) => {
    const task = await reads.getTask(req.params.id);
    if (!task) throw new HttpError(404, 'TASK_NOT_FOUND', `task ${req.params.id} not found`);
    return { task };
  });

  app.get('/api/agents', async (req) => {
    const q = validate(ListAgentsQuery, req.query, 'INVALID_QUERY');
    return reads.listAgents({
      limit: q.limit,
      ...(q.status ? { status: q.status } : {}),
      ...(q.q ? { text: q.q } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}),
    });
  });

  app.get('/api/stats', async () => reads.stats());

  app.get('/api/projects', async () => ({ projects: await reads.projects() }));

  app.get('/api/audit', async (req) => {
    const q = validate(AuditQuery, req.query, 'INVALID_QUERY');
    const entries = await deps.repos.audit.list({
      limit: q.limit,
      ...(q.action ? { action: q.action } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.resourceId ? { resourceId: q.resourceId } : {}),
    });
    return { entries };
  });
}
