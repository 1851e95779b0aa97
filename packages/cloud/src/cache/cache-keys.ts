/**
 * The names of the keys the cloud caches — every one of them is written by the
 * dashboard reads — and nothing else. Keys are hierarchical so that one prefix
 * invalidates a family: `project:<id>:tasks:` covers every cached task list of a
 * project. Lists across all projects use the project id `*`.
 */
export const ALL_PROJECTS = '*';

export const cacheKeys = {
  task: (taskId: string) => `task:${taskId}`,
  /** Prefix of every cached task list of a project. */
  projectTasks: (projectId: string) => `project:${projectId}:tasks:`,
  /** `filter`: the rest of a list query (search text, user, bot, dates, keyset cursor). */
  taskList: (q: { projectId?: string; status?: readonly string[]; limit: number; filter?: string }) =>
    `project:${q.projectId ?? ALL_PROJECTS}:tasks:${[...(q.status ?? [])].sort().join(',')}:${q.limit}${q.filter ? `:${q.filter}` : ''}`,
  globalStats: () => 'stats:global',
  projectList: () => 'projects:list',
  /** Prefix of every cached page of the agent listing. */
  agents: () => 'agents:',
  /** `query`: the rest of a page's query (status, search text, limit, keyset cursor). */
  agentPage: (query: string) => `agents:${query}`,
} as const;
