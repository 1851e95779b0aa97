import { TASK_STATUSES, type TaskStatus } from '@bematic/protocol';
import type { Cache } from '../cache/cache.js';
import { cacheKeys } from '../cache/cache-keys.js';
import type { Project, Repositories, Task } from '../db/repositories/types.js';

export interface TaskListQuery {
  status?: TaskStatus[];
  projectId?: string;
  limit: number;
  offset: number;
}

export interface TaskPage {
  tasks: TaskSummary[];
  limit: number;
  offset: number;
  /** Offset of the next page, or null on the last one. */
  nextOffset: number | null;
}

/** A task as the dashboard lists it (no prompt body or submission payload). */
export interface TaskSummary {
  id: string;
  status: TaskStatus;
  projectId: string;
  agentId: string;
  botName: string;
  command: string;
  model: string;
  priority: Task['priority'];
  userId: string;
  channelId: string;
  threadTs: string | null;
  promptPreview: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  costUsd: number;
  durationMs: number;
  errorCode: string | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  restoredFromArchive: string | null;
}

export interface DashboardStats {
  counts: Record<TaskStatus, number>;
  total: number;
  totals: {
    costUsd: number;
    inputTokens: number;
    outputTokens: number;
    cacheReadTokens: number;
    cacheCreationTokens: number;
    durationMs: number;
  };
  byBot: Record<string, { tasks: number; costUsd: number }>;
  archived: number;
}

export function summarize(t: Task): TaskSummary {
  return {
    id: t.id,
    status: t.status,
    projectId: t.projectId,
    agentId: t.agentId,
    botName: t.botName,
    command: t.command,
    model: t.model,
    priority: t.priority,
    userId: t.userId,
    channelId: t.channelId,
    threadTs: t.threadTs,
    promptPreview: t.prompt.length > 160 ? `${t.prompt.slice(0, 157)}…` : t.prompt,
    inputTokens: t.inputTokens,
    outputTokens: t.outputTokens,
    cacheReadTokens: t.cacheReadTokens,
    cacheCreationTokens: t.cacheCreationTokens,
    costUsd: t.costUsd,
    durationMs: t.durationMs,
    errorCode: t.errorCode,
    createdAt: t.createdAt,
    startedAt: t.startedAt,
    completedAt: t.completedAt,
    restoredFromArchive: t.restoredFromArchive,
  };
}

/** Largest offset + limit a list request may reach (the repository has no offset, so pages are sliced). */
export const MAX_LIST_WINDOW = 10_000;

/** The dashboard's read paths, through the cache. Invalidation happens in cache/invalidation.ts. */
export class DashboardReads {
  constructor(
    private readonly repos: Repositories,
    private readonly cache: Cache,
  ) {}

  listTasks(q: TaskListQuery): Promise<TaskPage> {
    const key = cacheKeys.taskList({
      ...(q.projectId !== undefined ? { projectId: q.projectId } : {}),
      ...(q.status ? { status: q.status } : {}),
      limit: q.limit,
      offset: q.offset,
    });
    return this.cache.getOrLoad(key, async () => {
      const rows = await this.repos.tasks.list({
        ...(q.status && q.status.length > 0 ? { status: q.status } : {}),
        ...(q.projectId !== undefined ? { projectId: q.projectId } : {}),
        limit: q.offset + q.limit + 1,
      });
      const page = rows.slice(q.offset, q.offset + q.limit);
      const more = rows.length > q.offset + q.limit && q.offset + q.limit < MAX_LIST_WINDOW;
      return {
        tasks: page.map(summarize),
        limit: q.limit,
        offset: q.offset,
        nextOffset: more ? q.offset + q.limit : null,
      };
    });
  }

  getTask(id: string): Promise<Task | undefined> {
    return this.cache.getOrLoad(cacheKeys.task(id), () => this.repos.tasks.findById(id));
  }

  stats(): Promise<DashboardStats> {
    return this.cache.getOrLoad(cacheKeys.globalStats(), async () => {
      const [counts, finished, archived] = await Promise.all([
        this.repos.tasks.countByStatus(),
        this.repos.tasks.list({ status: ['completed', 'failed', 'cancelled', 'running'] }),
        this.repos.archivedTasks.list(),
      ]);
      const totals = {
        costUsd: 0,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheCreationTokens: 0,
        durationMs: 0,
      };
      const byBot: DashboardStats['byBot'] = {};
      for (const t of finished) {
        totals.costUsd += t.costUsd;
        totals.inputTokens += t.inputTokens;
        totals.outputTokens += t.outputTokens;
        totals.cacheReadTokens += t.cacheReadTokens;
        totals.cacheCreationTokens += t.cacheCreationTokens;
        totals.durationMs += t.durationMs;
        const bot = byBot[t.botName] ?? { tasks: 0, costUsd: 0 };
        bot.tasks++;
        bot.costUsd += t.costUsd;
        byBot[t.botName] = bot;
      }
      totals.costUsd = Math.round(totals.costUsd * 1e6) / 1e6;
      const total = TASK_STATUSES.reduce((n, s) => n + counts[s], 0);
      return { counts, total, totals, byBot, archived: archived.length };
    });
  }

  projects(): Promise<Project[]> {
    return this.cache.getOrLoad(cacheKeys.projectList(), () => this.repos.projects.list());
  }

  /** Startup warming (the seed's "auto cache warming on startup"); best effort. */
  async warm(): Promise<void> {
    await Promise.allSettled([this.stats(), this.projects(), this.listTasks({ limit: 50, offset: 0 })]);
  }
}
