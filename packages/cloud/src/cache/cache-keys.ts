/**
 * Cache key names. Keys are hierarchical so that one prefix invalidates a
 * family: `project:<id>:tasks:` covers every cached task list of a project.
 * Lists across all projects use the project id `*`.
 */
export const ALL_PROJECTS = '*';

export const cacheKeys = {
  task: (taskId: string) => `task:${taskId}`,
  /** Prefix of every cached task list of a project. */
  projectTasks: (projectId: string) => `project:${projectId}:tasks:`,
  taskList: (q: { projectId?: string; status?: readonly string[]; limit: number; offset: number }) =>
    `project:${q.projectId ?? ALL_PROJECTS}:tasks:${[...(q.status ?? [])].sort().join(',')}:${q.limit}:${q.offset}`,
  projectStats: (projectId: string) => `project:${projectId}:stats`,
  globalStats: () => 'stats:global',
  project: (projectId: string) => `project:${projectId}:meta`,
  projectList: () => 'projects:list',
  agentStatus: (agentId: string) => `agent:${agentId}:status`,
  agentStats: (agentId: string) => `agent:${agentId}:stats`,
  agentList: () => 'agents:list',
  user: (userId: string) => `user:${userId}`,
  bot: (botName: string) => `bot:${botName}`,
  /** Prefix of every bot persona. */
  bots: () => 'bot:',
  apiKey: (keyPrefix: string) => `apikey:${keyPrefix}`,
  /** Prefix of every cached key validation. */
  apiKeys: () => 'apikey:',
} as const;
