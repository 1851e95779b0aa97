import type {
  ResourceMetrics,
  SandboxMode,
  SummedTaskMetrics,
  TaskPriority,
  TaskStatus,
} from '@bematic/protocol';
import type { ChatBlock } from '../chat/chat-surface.js';
import type { AgentCounts, AuditEntry, Task, TaskStep } from '../db/repositories/types.js';

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
export interface TaskSummary extends SummedTaskMetrics {
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
  errorCode: string | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  restoredFromArchive: string | null;
}

export interface DashboardStats {
  counts: Record<TaskStatus, number>;
  total: number;
  totals: SummedTaskMetrics;
  byBot: Record<string, { tasks: number; costUsd: number }>;
  archived: number;
}

/** Everything the task page shows, in one answer. */
export interface TaskDetail {
  task: Omit<Task, 'submission'>;
  steps: TaskStep[];
  audit: AuditEntry[];
  project: { id: string; name: string } | null;
  links: { thread: string | null };
}

export type CircuitState = 'closed' | 'half-open' | 'open';

export interface AgentSnapshot {
  agentId: string;
  online: boolean;
  overloaded: boolean;
  circuit: CircuitState;
  hostname: string | null;
  version: string | null;
  connectedAt: number | null;
  lastSeenAt: number | null;
  lastRttMs: number | null;
  metrics: ResourceMetrics | null;
  maxConcurrentTasks: number | null;
  /** `off` or `unavailable` means commands on that agent are not sandboxed: shown in red. */
  sandbox: SandboxMode | null;
  offlineQueueDepth: number;
}

/** GET /api/agents: one page, online agents first and then by id. */
export interface AgentPage {
  agents: AgentSnapshot[];
  limit: number;
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
  /** Every agent the cloud knows, whatever the filters. */
  summary: AgentCounts;
}

/** GET /api/session. */
export interface SessionInfo {
  signedIn: boolean;
  user: { id: string; name: string };
  consoleChannelId: string;
}

/** A message of the web console, as GET /api/console/threads and the event stream carry it. */
export interface ConsoleMessage {
  channelId: string;
  ts: string;
  /** Root ts of the thread; null for a top-level message. */
  threadTs: string | null;
  userId: string;
  text: string;
  blocks?: ChatBlock[];
  reactions: string[];
  /** Visible to this user only. */
  visibleTo: string | null;
  postedAt: number;
  editedAt: number | null;
}

export interface ConsoleThread {
  channelId: string;
  root: ConsoleMessage;
  replies: ConsoleMessage[];
}

export type ConsoleChange =
  | { kind: 'message.posted'; message: ConsoleMessage }
  | { kind: 'message.updated'; message: ConsoleMessage }
  | { kind: 'reaction.added' | 'reaction.removed'; message: ConsoleMessage; reaction: string };
