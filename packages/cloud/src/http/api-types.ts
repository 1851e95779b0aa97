import type { TaskPriority, TaskStatus } from '@bematic/protocol';

/*
 * Answers of the JSON API that the dashboard reads too (it imports them as types).
 * Kept free of Node so the browser app's typecheck can follow them.
 */

export interface TaskPage {
  tasks: TaskSummary[];
  limit: number;
  /** Pass as `cursor` for the next (older) page; null on the last one. */
  nextCursor: string | null;
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
  priority: TaskPriority;
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
