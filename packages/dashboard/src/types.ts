/** The JSON the cloud's API answers with (see docs/http-api.md): the cloud's own types, erased at build. */

import type { AuditEntry } from '../../cloud/src/db/repositories/types.js';
import type { TaskSummary } from '../../cloud/src/http/api-types.js';

export type { TaskStatus } from '@bematic/protocol';
export type { AuditEntry, CostBucket } from '../../cloud/src/db/repositories/types.js';
export type { DashboardStats, TaskPage, TaskSummary } from '../../cloud/src/http/api-types.js';

/** Workspace fields are present once agents report them. */
export interface Task extends TaskSummary {
  prompt: string;
  result: string | null;
  errorMessage: string | null;
  recoverable: boolean | null;
  warning: string | null;
  filesChanged: string[];
  commandsRun: string[];
  numTurns: number;
  continuations: number;
  parentTaskId: string | null;
  updatedAt: number;
  /** Where the task's changes are (agents with worktrees report it). */
  workspace?: WorkspaceReport | null;
  pullRequestUrl?: string | null;
  diff?: string | null;
}

export interface WorkspaceReport {
  mode: string;
  branch?: string;
  base?: string;
  baseCommit?: string;
  commit?: string;
  files: Array<{ path: string; added: number; removed: number; binary: boolean }>;
  notices: string[];
}

export interface TaskStep {
  seq: number;
  kind: 'started' | 'tool' | 'status' | 'continuation' | 'text' | 'plan';
  tool: string | null;
  message: string;
  detail: unknown;
  createdAt: number;
}

export interface TaskDetail {
  task: Task;
  steps: TaskStep[];
  audit: AuditEntry[];
  project: { id: string; name: string } | null;
  links: { thread: string | null };
}

export interface Project {
  id: string;
  name: string;
  channelId: string;
}

export interface TextObject {
  type: 'plain_text' | 'mrkdwn';
  text: string;
}
export interface BlockElement {
  type: string;
  /** A text object on buttons; the text itself on context elements. */
  text?: TextObject | string;
  action_id?: string;
  value?: string;
  style?: 'primary' | 'danger';
  url?: string;
  alt_text?: string;
}
export interface Block {
  type: string;
  text?: TextObject | string;
  fields?: TextObject[];
  accessory?: BlockElement;
  elements?: BlockElement[];
}

export interface ConsoleMessage {
  channelId: string;
  ts: string;
  threadTs: string | null;
  userId: string;
  text: string;
  blocks?: Block[];
  reactions: string[];
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
  | { kind: 'message.posted' | 'message.updated'; message: ConsoleMessage }
  | { kind: 'reaction.added' | 'reaction.removed'; message: ConsoleMessage; reaction: string };

export interface SessionInfo {
  signedIn: boolean;
  user: { id: string; name: string };
  consoleChannelId: string;
}

export interface AgentSnapshot {
  agentId: string;
  online: boolean;
  overloaded: boolean;
  circuit: 'closed' | 'open' | 'half-open';
  hostname: string | null;
  version: string | null;
  connectedAt: number | null;
  lastSeenAt: number | null;
  lastRttMs: number | null;
  metrics: {
    cpuPercent: number;
    memoryPercent: number;
    rssMb: number;
    loadAvg1m: number;
    activeTasks: number;
    queuedTasks: number;
  } | null;
  maxConcurrentTasks: number | null;
  offlineQueueDepth: number;
  sandbox?: 'on' | 'off' | 'unavailable' | null;
}
