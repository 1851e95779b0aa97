import { z } from 'zod';
import { AUTH_FAILURE_CODES, OVERLOAD_RESOURCES, SYSTEM_ERROR_CODES, TASK_REFUSAL_CODES } from './codes.js';
import {
  ATTACHMENT_KINDS,
  ATTACHMENT_LIMITS,
  PERMISSION_DECISIONS,
  PERMISSION_REASONS,
  SANDBOX_MODES,
  TASK_ERROR_CODES,
  TASK_PRIORITIES,
  WORKSPACE_ACTIONS,
  WORKSPACE_MODES,
  WORKSPACE_NOTICES,
  WORKSPACE_RESULT_CODES,
} from './constants.js';

const id = z.string().min(1).max(200);
const nonNegInt = z.number().int().nonnegative();
/**
 * Which send of a task a message belongs to: the cloud numbers every TASK_SUBMIT of a task 1, 2, 3, … and
 * every message about the task carries the number back, so a message from an earlier send is recognised.
 */
const attempt = z.number().int().positive();

export const ResourceMetrics = z.object({
  cpuPercent: z.number().min(0).max(100),
  memoryPercent: z.number().min(0).max(100),
  rssMb: z.number().nonnegative(),
  loadAvg1m: z.number().nonnegative(),
  activeTasks: nonNegInt,
  queuedTasks: nonNegInt,
});
export type ResourceMetrics = z.infer<typeof ResourceMetrics>;

export const TaskMetrics = z.object({
  inputTokens: nonNegInt,
  outputTokens: nonNegInt,
  cacheReadTokens: nonNegInt,
  cacheCreationTokens: nonNegInt,
  costUsd: z.number().nonnegative(),
  durationMs: nonNegInt,
  numTurns: nonNegInt,
  continuations: nonNegInt,
});
export type TaskMetrics = z.infer<typeof TaskMetrics>;

export const AuthRequest = z.object({
  agentId: id,
  apiKey: z.string().min(1).max(500),
  agentVersion: z.string().max(50),
  hostname: z.string().max(255).optional(),
  maxConcurrentTasks: z.number().int().positive(),
  /** Tasks the agent is running or has queued locally (reconciliation after reconnect). */
  activeTaskIds: z.array(id).max(10_000),
  /** Tasks whose terminal message is waiting in the agent's outbound buffer. */
  bufferedTaskIds: z.array(id).max(10_000),
  /** How the agent confines commands; absent from agents that predate the field. */
  sandbox: z.enum(SANDBOX_MODES).optional(),
});
export type AuthRequest = z.infer<typeof AuthRequest>;

export const AuthResponse = z
  .object({
    success: z.boolean(),
    agentId: id.optional(),
    /** Why authentication failed; required when `success` is false. */
    code: z.enum(AUTH_FAILURE_CODES).optional(),
    /** The same, for people. */
    error: z.string().max(500).optional(),
    heartbeatIntervalMs: z.number().int().positive().optional(),
    /**
     * How long the cloud waits for a disconnected agent before it fails the tasks that agent was running
     * (AGENT_LOST). The agent stops its runs before that, so none is still running once it is declared lost.
     */
    reconnectGraceMs: z.number().int().positive().optional(),
    /** Task ids the cloud no longer wants (cancelled or already terminal while the agent was away). */
    cancelTaskIds: z.array(id).optional(),
  })
  .refine((r) => r.success || r.code !== undefined, {
    message: 'a failed AUTH_RESPONSE carries a code',
    path: ['code'],
  });
export type AuthResponse = z.infer<typeof AuthResponse>;

export const HeartbeatPing = z.object({ seq: nonNegInt, sentAt: z.number() });
export type HeartbeatPing = z.infer<typeof HeartbeatPing>;

export const HeartbeatPong = z.object({ seq: nonNegInt, sentAt: z.number(), metrics: ResourceMetrics });
export type HeartbeatPong = z.infer<typeof HeartbeatPong>;

const gitRef = z.string().min(1).max(250);
const sha = z.string().regex(/^[0-9a-f]{40,64}$/);

/** Where a writing task starts from. */
export const WorkspaceRequest = z.object({
  /** Ref the new branch starts from (`--base`); default the checkout's HEAD. */
  base: gitRef.optional(),
  /** A thread reply: continue in the worktree and branch this earlier task created. */
  continueFrom: id.optional(),
});
export type WorkspaceRequest = z.infer<typeof WorkspaceRequest>;

export const FileDiffStat = z.object({
  path: z.string().max(4096),
  added: nonNegInt,
  removed: nonNegInt,
  binary: z.boolean(),
});
export type FileDiffStat = z.infer<typeof FileDiffStat>;

/** Where a task's changes are: sent with the task's terminal message. */
export const WorkspaceReport = z.object({
  mode: z.enum(WORKSPACE_MODES),
  /** The task whose worktree this is (itself, or the first task of its thread). */
  ownerTaskId: id.optional(),
  branch: gitRef.optional(),
  /** The ref the branch started from, as named (e.g. "main"). */
  base: gitRef.optional(),
  baseCommit: sha.optional(),
  /** The commit this task made; absent when it changed nothing. */
  commit: sha.optional(),
  /** Files of this task's commit with lines added/removed. */
  files: z.array(FileDiffStat).max(10_000),
  notices: z.array(z.enum(WORKSPACE_NOTICES)).max(10),
  /** For BASE_DIRTY: how many files were uncommitted in the checkout. */
  dirtyFiles: nonNegInt.optional(),
});
export type WorkspaceReport = z.infer<typeof WorkspaceReport>;

const stringMap = z.record(z.string().max(200), z.string().max(10_000));

/** One MCP server a project declares (the SDK's stdio, SSE and HTTP forms). */
export const McpServer = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('stdio'),
    command: z.string().min(1).max(4096),
    args: z.array(z.string().max(10_000)).max(200).optional(),
    env: stringMap.optional(),
  }),
  z.object({ type: z.literal('sse'), url: z.string().url().max(2000), headers: stringMap.optional() }),
  z.object({ type: z.literal('http'), url: z.string().url().max(2000), headers: stringMap.optional() }),
]);
export type McpServer = z.infer<typeof McpServer>;

/** MCP servers by name; names become tool prefixes (`mcp__<name>__…`). */
export const McpServers = z
  .record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), McpServer)
  .refine((m) => Object.keys(m).length <= 20, 'at most 20 MCP servers');
export type McpServers = z.infer<typeof McpServers>;

/** Bytes a base64 string of this length decodes to. */
export const base64Bytes = (data: string): number =>
  Math.floor((data.length * 3) / 4) - (data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0);

/** A file attached to the request (or to the thread it was asked in), its content in base64. */
export const TaskAttachment = z.object({
  name: z.string().min(1).max(255),
  kind: z.enum(ATTACHMENT_KINDS),
  mediaType: z.string().min(1).max(100),
  data: z
    .string()
    .max(Math.ceil(ATTACHMENT_LIMITS.fileBytes / 3) * 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64'),
});
export type TaskAttachment = z.infer<typeof TaskAttachment>;

export const TaskAttachments = z
  .array(TaskAttachment)
  .max(ATTACHMENT_LIMITS.files)
  .refine(
    (list) => list.reduce((n, a) => n + base64Bytes(a.data), 0) <= ATTACHMENT_LIMITS.totalBytes,
    `attachments exceed ${ATTACHMENT_LIMITS.totalBytes} bytes in total`,
  );

/** What a task asks an agent to do, as the cloud stores it; each send adds its attempt (TaskSubmit). */
export const TaskSubmission = z.object({
  taskId: id,
  projectId: id,
  localPath: z.string().min(1).max(4096),
  botName: z.string().min(1).max(50),
  command: z.string().min(1).max(50),
  prompt: z.string().min(1).max(100_000),
  systemPrompt: z.string().max(50_000),
  model: z.string().min(1).max(100),
  allowedTools: z.array(z.string().min(1).max(100)).max(100),
  priority: z.enum(TASK_PRIORITIES),
  maxBudgetUsd: z.number().positive().optional(),
  resumeSessionId: z.string().max(200).optional(),
  maxContinuations: z.number().int().min(0).max(20).optional(),
  timeoutMs: z.number().int().positive().optional(),
  parentTaskId: id.optional(),
  workspace: WorkspaceRequest.optional(),
  /** The project's MCP servers, offered to Claude Code for this task. */
  mcpServers: McpServers.optional(),
  /** Images and text files the person attached; absent from clouds that predate the field. */
  attachments: TaskAttachments.optional(),
});
export type TaskSubmission = z.infer<typeof TaskSubmission>;

export const TaskSubmit = TaskSubmission.extend({ attempt });
export type TaskSubmit = z.infer<typeof TaskSubmit>;

/** Why an agent is too busy for new work: which resource, how full, and for how long it has been. */
export const OverloadDetail = z.object({
  resource: z.enum(OVERLOAD_RESOURCES),
  percent: z.number().min(0).max(100),
  sustainedMs: nonNegInt,
});
export type OverloadDetail = z.infer<typeof OverloadDetail>;

export const TaskAck = z
  .object({
    taskId: id,
    attempt,
    accepted: z.boolean(),
    queued: z.boolean(),
    /** Why the task was refused; required when `accepted` is false. See TASK_REFUSALS for "not now" vs "never". */
    code: z.enum(TASK_REFUSAL_CODES).optional(),
    /** The refusal, for people. */
    reason: z.string().max(500).optional(),
    /** For OVERLOADED: what is busy. */
    overload: OverloadDetail.optional(),
    queuePosition: nonNegInt.optional(),
    resourceStatus: ResourceMetrics.optional(),
  })
  .refine((a) => a.accepted || a.code !== undefined, {
    message: 'a refusal carries a code',
    path: ['code'],
  });
export type TaskAck = z.infer<typeof TaskAck>;

/**
 * The running totals of a task so far, sent with its progress (absent from agents that predate the field):
 * tokens of the model calls seen, Claude Code's turns, and the cost of the invocations that have reported one.
 */
export const TaskUsage = z.object({
  inputTokens: nonNegInt,
  outputTokens: nonNegInt,
  turns: nonNegInt,
  costUsd: z.number().nonnegative().optional(),
});
export type TaskUsage = z.infer<typeof TaskUsage>;

export const TaskProgress = z.object({
  taskId: id,
  attempt,
  kind: z.enum(['started', 'tool', 'status', 'continuation']),
  /** Human-readable step, e.g. "Editing src/auth.ts". */
  message: z.string().max(2000),
  tool: z.string().max(100).optional(),
  /** Tool steps: what the tool was given, summarised (an edit as a diff, a command), secrets redacted. */
  input: z.string().max(20_000).optional(),
  /** Pairs a tool's result with its call. */
  toolUseId: z.string().max(200).optional(),
  /** The tool's answer (clipped, redacted), sent once it returns; `message` repeats the call's step. */
  result: z.string().max(20_000).optional(),
  isError: z.boolean().optional(),
  usage: TaskUsage.optional(),
});
export type TaskProgress = z.infer<typeof TaskProgress>;

export const TaskStream = z.object({ taskId: id, attempt, seq: nonNegInt, text: z.string().max(200_000) });
export type TaskStream = z.infer<typeof TaskStream>;

export const TaskComplete = z.object({
  taskId: id,
  attempt,
  result: z.string().max(500_000),
  sessionId: z.string().max(200).optional(),
  metrics: TaskMetrics,
  filesChanged: z.array(z.string().max(4096)).max(10_000),
  commandsRun: z.array(z.string().max(10_000)).max(10_000),
  warning: z.string().max(2000).optional(),
  resourceMetrics: ResourceMetrics.optional(),
  workspace: WorkspaceReport.optional(),
});
export type TaskComplete = z.infer<typeof TaskComplete>;

export const TaskError = z.object({
  taskId: id,
  attempt,
  error: z.string().max(10_000),
  recoverable: z.boolean(),
  errorCode: z.enum(TASK_ERROR_CODES),
  sessionId: z.string().max(200).optional(),
  metrics: TaskMetrics.optional(),
  context: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  workspace: WorkspaceReport.optional(),
});
export type TaskError = z.infer<typeof TaskError>;

export const TaskCancel = z.object({ taskId: id, attempt, reason: z.string().max(500) });
export type TaskCancel = z.infer<typeof TaskCancel>;

export const TaskCancelled = z.object({
  taskId: id,
  attempt,
  reason: z.string().max(500).optional(),
  partialResult: z.string().max(500_000).optional(),
  sessionId: z.string().max(200).optional(),
  metrics: TaskMetrics.optional(),
  workspace: WorkspaceReport.optional(),
});
export type TaskCancelled = z.infer<typeof TaskCancelled>;

export const AgentStatus = z.object({
  overloaded: z.boolean(),
  /** For people. */
  reason: z.string().max(500).optional(),
  /** While overloaded: what is busy. */
  overload: OverloadDetail.optional(),
  maxConcurrentTasks: z.number().int().positive(),
  metrics: ResourceMetrics,
});
export type AgentStatus = z.infer<typeof AgentStatus>;

export const SystemShutdown = z.object({
  reason: z.string().max(500),
  /** Expected time until the sender is back, if it intends to come back. */
  reconnectInMs: nonNegInt.optional(),
});
export type SystemShutdown = z.infer<typeof SystemShutdown>;

export const SystemError = z.object({
  code: z.enum(SYSTEM_ERROR_CODES),
  message: z.string().max(2000),
  /** Envelope id of the frame that caused the error, when known. */
  refId: z.string().max(200).optional(),
});
export type SystemError = z.infer<typeof SystemError>;

/**
 * Cloud → agent: the task's terminal message of this attempt is committed (or the task was already terminal).
 * Until it arrives the agent keeps the terminal message and resends it after every reconnect.
 */
export const TaskResultAck = z.object({ taskId: id, attempt });
export type TaskResultAck = z.infer<typeof TaskResultAck>;

/** Cloud → agent: do something with the branch a task left behind. */
export const WorkspaceCommand = z.object({
  requestId: id,
  /** The task that owns the worktree and branch. */
  taskId: id,
  projectId: id,
  localPath: z.string().min(1).max(4096),
  action: z.enum(WORKSPACE_ACTIONS),
  /** For create_pr. */
  pullRequest: z.object({ title: z.string().min(1).max(256), body: z.string().max(60_000) }).optional(),
});
export type WorkspaceCommand = z.infer<typeof WorkspaceCommand>;

/** Agent → cloud: how a WORKSPACE_COMMAND ended. */
export const WorkspaceResult = z.object({
  requestId: id,
  taskId: id,
  action: z.enum(WORKSPACE_ACTIONS),
  code: z.enum(WORKSPACE_RESULT_CODES),
  branch: gitRef.optional(),
  /** Where the branch was pushed (remote name) for PR_CREATED / PUSHED_NO_PR. */
  remote: z.string().max(200).optional(),
  pullRequestUrl: z.string().url().max(2000).optional(),
  pullRequestNumber: z.number().int().positive().optional(),
  /** For DIFF: the patch (cut at MAX_DIFF_BYTES) and its full size. */
  patch: z.string().max(300_000).optional(),
  patchBytes: nonNegInt.optional(),
  truncated: z.boolean().optional(),
  /** Detail for failures (git's or GitHub's message, without credentials). */
  detail: z.string().max(2000).optional(),
});
export type WorkspaceResult = z.infer<typeof WorkspaceResult>;
/** Agent → cloud: Claude Code wants to do something only a person may allow. */
export const PermissionRequest = z.object({
  taskId: id,
  attempt: attempt.optional(),
  requestId: id,
  /** Tool name as Claude Code calls it (`Bash`, `SandboxNetworkAccess`, `WebFetch`, …). */
  tool: z.string().min(1).max(100),
  /** What would run, already redacted, e.g. the command line or the host. */
  summary: z.string().max(2000),
  reason: z.enum(PERMISSION_REASONS),
});
export type PermissionRequest = z.infer<typeof PermissionRequest>;

/** Cloud → agent: the answer to a PERMISSION_REQUEST. */
export const PermissionResponse = z.object({
  taskId: id,
  attempt: attempt.optional(),
  requestId: id,
  decision: z.enum(PERMISSION_DECISIONS),
  /** Who answered (a user id), when a person did. */
  decidedBy: z.string().max(200).optional(),
});
export type PermissionResponse = z.infer<typeof PermissionResponse>;

/** Every message type and the schema of its payload: the single source of truth for the wire. */
export const PAYLOAD_SCHEMAS = {
  AUTH_REQUEST: AuthRequest,
  AUTH_RESPONSE: AuthResponse,
  HEARTBEAT_PING: HeartbeatPing,
  HEARTBEAT_PONG: HeartbeatPong,
  TASK_SUBMIT: TaskSubmit,
  TASK_ACK: TaskAck,
  TASK_PROGRESS: TaskProgress,
  TASK_STREAM: TaskStream,
  TASK_COMPLETE: TaskComplete,
  TASK_ERROR: TaskError,
  TASK_CANCEL: TaskCancel,
  TASK_CANCELLED: TaskCancelled,
  TASK_RESULT_ACK: TaskResultAck,
  AGENT_STATUS: AgentStatus,
  SYSTEM_SHUTDOWN: SystemShutdown,
  SYSTEM_ERROR: SystemError,
  WORKSPACE_COMMAND: WorkspaceCommand,
  WORKSPACE_RESULT: WorkspaceResult,
  PERMISSION_REQUEST: PermissionRequest,
  PERMISSION_RESPONSE: PermissionResponse,
} as const;

export type MessageType = keyof typeof PAYLOAD_SCHEMAS;
export const MESSAGE_TYPES = Object.keys(PAYLOAD_SCHEMAS) as MessageType[];
export type PayloadOf<T extends MessageType> = z.infer<(typeof PAYLOAD_SCHEMAS)[T]>;
