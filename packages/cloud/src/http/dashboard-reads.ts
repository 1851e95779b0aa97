import {
  SUMMED_TASK_METRIC_KEYS,
  type SummedTaskMetrics,
  TASK_STATUSES,
  type TaskStatus,
} from '@bematic/protocol';
import type { Cache } from '../cache/cache.js';
import { cacheKeys } from '../cache/cache-keys.js';
import type {
  AgentListingQuery,
  AgentPosition,
  CostBucket,
  Project,
  Repositories,
  Task,
  TaskListing,
  TaskSearch,
} from '../db/repositories/types.js';
import type { AgentDirectory } from '../gateway/types.js';
import type { AgentPage, DashboardStats, TaskDetail, TaskPage, TaskSummary } from './api-types.js';
import { HttpError } from './http-error.js';

export type { AgentPage, DashboardStats, TaskDetail, TaskPage, TaskSummary } from './api-types.js';

/** A task search as the API takes it: the keyset position as the previous page's nextCursor. */
export interface TaskListQuery extends Omit<TaskSearch, 'before'> {
  cursor?: string;
}

/** A page of the agent listing as the API takes it: the keyset position as the previous page's nextCursor. */
export interface AgentListQuery extends Omit<AgentListingQuery, 'after' | 'scanLimit'> {
  cursor?: string;
}

/** Live state changes every heartbeat; a short TTL only absorbs bursts of dashboard polls. */
const AGENT_PAGE_TTL_MS = 1000;

export function summarize(t: TaskListing): TaskSummary {
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

/** A keyset position as an opaque cursor: a number (a task's created time, an agent's place) and an id. */
export function encodeCursor(key: number, id: string): string {
  return Buffer.from(`${key}:${id}`).toString('base64url');
}

const notACursor = () => new HttpError(400, 'INVALID_QUERY', 'cursor: not a cursor from a previous page');

export function decodeCursor(cursor: string): { key: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = /^(\d{1,16}):(.{1,200})$/.exec(text);
  if (!m?.[1] || !m[2]) throw notACursor();
  return { key: Number(m[1]), id: m[2] };
}

/** An agent's place in the listing: 0 online, 1 offline (the listing's order), then its id. */
const encodeAgentCursor = (p: AgentPosition): string => encodeCursor(p.online ? 0 : 1, p.id);

function decodeAgentCursor(cursor: string): AgentPosition {
  const { key, id } = decodeCursor(cursor);
  if (key !== 0 && key !== 1) throw notACursor();
  return { online: key === 0, id };
}

function taskPosition(cursor: string): { createdAt: number; id: string } {
  const { key, id } = decodeCursor(cursor);
  return { createdAt: key, id };
}

/** The statuses whose tokens and cost the totals add up (a running task's so far). */
const COSTED: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'cancelled', 'running']);

/** Counters add and subtract floating-point costs; a micro-dollar is the unit shown anywhere. */
const roundUsd = (usd: number): number => Math.round(usd * 1e6) / 1e6;

/** How far back the cost chart looks, at most. */
const MAX_COST_DAYS = 90;

/** The dashboard's read paths, through the cache. Invalidation happens in cache/invalidation.ts. */
export class DashboardReads {
  constructor(
    private readonly repos: Repositories,
    private readonly cache: Cache,
    private readonly directory: AgentDirectory,
    private readonly now: () => number = Date.now,
  ) {}

  listTasks(q: TaskListQuery): Promise<TaskPage> {
    const filter = JSON.stringify([q.userId, q.botName, q.from, q.to, q.text, q.cursor]);
    const key = cacheKeys.taskList({
      ...(q.projectId !== undefined ? { projectId: q.projectId } : {}),
      ...(q.status ? { status: q.status } : {}),
      limit: q.limit,
      filter,
    });
    const search: TaskSearch = {
      limit: q.limit + 1,
      ...(q.status && q.status.length > 0 ? { status: q.status } : {}),
      ...(q.projectId !== undefined ? { projectId: q.projectId } : {}),
      ...(q.userId !== undefined ? { userId: q.userId } : {}),
      ...(q.botName !== undefined ? { botName: q.botName } : {}),
      ...(q.from !== undefined ? { from: q.from } : {}),
      ...(q.to !== undefined ? { to: q.to } : {}),
      ...(q.text ? { text: q.text } : {}),
      ...(q.cursor ? { before: taskPosition(q.cursor) } : {}),
    };
    return this.cache.getOrLoad(key, async () => {
      const { rows, scannedTo } = await this.repos.taskSearch.searchPage(search);
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      // A text search reads a bounded window per request: a short page can still have a next one.
      const next = rows.length > q.limit && last ? last : scannedTo;
      return {
        tasks: page.map(summarize),
        limit: q.limit,
        nextCursor: next ? encodeCursor(next.createdAt, next.id) : null,
      };
    });
  }

  /** A page of agents and the counts of all of them; a bad cursor is refused before anything is read. */
  listAgents(q: AgentListQuery): Promise<AgentPage> {
    const after = q.cursor ? decodeAgentCursor(q.cursor) : undefined;
    const key = cacheKeys.agentPage(JSON.stringify([q.status, q.text, q.limit, q.cursor]));
    const listing: AgentListingQuery = {
      limit: q.limit,
      ...(q.status ? { status: q.status } : {}),
      ...(q.text ? { text: q.text } : {}),
      ...(after ? { after } : {}),
    };
    return this.cache.getOrLoad(
      key,
      async () => {
        const [page, summary] = await Promise.all([
          this.directory.listAgents(listing),
          this.directory.countAgents(),
        ]);
        return {
          agents: page.agents,
          limit: q.limit,
          nextCursor: page.next ? encodeAgentCursor(page.next) : null,
          summary,
        };
      },
      AGENT_PAGE_TTL_MS,
    );
  }

  getTask(id: string): Promise<Task | undefined> {
    return this.cache.getOrLoad(cacheKeys.task(id), () => this.repos.tasks.findById(id));
  }

  /** Not cached: the transcript grows while the task runs. */
  async taskDetail(id: string, threadLink: (t: Task) => string | null): Promise<TaskDetail | undefined> {
    const task = await this.repos.tasks.findById(id);
    if (!task) return undefined;
    const [steps, audit, project] = await Promise.all([
      this.repos.taskSteps.list(id),
      this.repos.audit.list({ resourceId: id, limit: 500 }),
      this.repos.projects.findById(task.projectId),
    ]);
    const { submission: _submission, ...rest } = task;
    return {
      task: rest,
      steps,
      audit: audit.sort((a, b) => a.ts - b.ts || a.id - b.id),
      project: project ? { id: project.id, name: project.name } : null,
      links: { thread: threadLink(task) },
    };
  }

  async costs(by: 'day' | 'project' | 'user', days: number, tzOffsetMinutes: number): Promise<CostBucket[]> {
    const span = Math.min(Math.max(1, days), MAX_COST_DAYS);
    const startOfToday = Math.floor((this.now() - tzOffsetMinutes * 60_000) / 86_400_000) * 86_400_000;
    const since = startOfToday + tzOffsetMinutes * 60_000 - (span - 1) * 86_400_000;
    const buckets = await this.repos.taskSearch.costs(by, since, tzOffsetMinutes);
    if (by !== 'project') return buckets;
    const names = new Map((await this.projects()).map((p) => [p.id, p.name]));
    return buckets.map((b) => ({ ...b, key: names.get(b.key) ?? b.key }));
  }

  stats(): Promise<DashboardStats> {
    return this.cache.getOrLoad(cacheKeys.globalStats(), async () => {
      const [rows, archived] = await Promise.all([
        this.repos.taskSearch.totals(),
        this.repos.archivedTasks.count(),
      ]);
      const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
      const totals = Object.fromEntries(SUMMED_TASK_METRIC_KEYS.map((k) => [k, 0])) as SummedTaskMetrics;
      const byBot: DashboardStats['byBot'] = {};
      for (const r of rows) {
        counts[r.status] += r.tasks;
        if (!COSTED.has(r.status)) continue;
        for (const k of SUMMED_TASK_METRIC_KEYS) totals[k] += r[k];
        const bot = byBot[r.botName] ?? { tasks: 0, costUsd: 0 };
        bot.tasks += r.tasks;
        bot.costUsd += r.costUsd;
        byBot[r.botName] = bot;
      }
      totals.costUsd = roundUsd(totals.costUsd);
      for (const bot of Object.values(byBot)) bot.costUsd = roundUsd(bot.costUsd);
      const total = TASK_STATUSES.reduce((n, s) => n + counts[s], 0);
      return { counts, total, totals, byBot, archived };
    });
  }

  projects(): Promise<Project[]> {
    return this.cache.getOrLoad(cacheKeys.projectList(), () => this.repos.projects.list());
  }

  /** Startup warming (the seed's "auto cache warming on startup"); best effort. */
  async warm(): Promise<void> {
    await Promise.allSettled([this.stats(), this.projects(), this.listTasks({ limit: 25 })]);
  }
}
