/**
 * Wire protocol version carried in every envelope as `v`. Bump on breaking changes.
 * 2: coded decisions (TASK_ACK.code, AUTH_RESPONSE.code, SYSTEM_ERROR.code), attempt numbers on every task
 * message, TASK_RESULT_ACK.
 */
export const PROTOCOL_VERSION = 2;

/** Frames larger than this are rejected before JSON parsing. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/**
 * Files a person attached to a request travel inside TASK_SUBMIT (the agent holds no chat token), so they
 * are bounded to leave a frame room for the prompt: per file and in total, in decoded bytes.
 */
export const ATTACHMENT_LIMITS = { files: 10, fileBytes: 512 * 1024, totalBytes: 512 * 1024 } as const;
/** image: given to Claude as image content; text: written into the task's directory for Claude to read. */
export const ATTACHMENT_KINDS = ['image', 'text'] as const;
export type AttachmentKind = (typeof ATTACHMENT_KINDS)[number];
/** The image types the Messages API accepts as image content. */
export const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;

/** Path of the agent WebSocket endpoint on the cloud HTTP server. */
export const AGENT_WS_PATH = '/ws/agent';

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;
export const DEFAULT_AUTH_TIMEOUT_MS = 10_000;

export const TASK_PRIORITIES = ['urgent', 'high', 'normal', 'low'] as const;
export type TaskPriority = (typeof TASK_PRIORITIES)[number];

/** Lower rank runs first. */
export const PRIORITY_RANK: Record<TaskPriority, number> = { urgent: 0, high: 1, normal: 2, low: 3 };

export const TASK_STATUSES = [
  'pending',
  'queued',
  'submitted',
  'running',
  'completed',
  'failed',
  'cancelled',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];
export const isTerminalStatus = (s: TaskStatus): boolean => TERMINAL_STATUSES.includes(s);

/** Machine-readable error codes that travel in TASK_ERROR.errorCode. */
export const TASK_ERROR_CODES = [
  'BUDGET_EXCEEDED',
  'RATE_LIMITED',
  'MODEL_OVERLOADED',
  'MODEL_SERVER_ERROR',
  'AUTH_FAILED',
  'TIMEOUT',
  'PATH_NOT_ALLOWED',
  'AGENT_OVERLOADED',
  'QUEUE_EXPIRED',
  'AGENT_LOST',
  'EXECUTION_FAILED',
  'INVALID_REQUEST',
  'WORKSPACE_FAILED',
  'SANDBOX_UNAVAILABLE',
  /** Claude Code has no credentials on the agent (no ANTHROPIC_API_KEY, no `claude login`). */
  'CREDENTIALS_MISSING',
] as const;
export type TaskErrorCode = (typeof TASK_ERROR_CODES)[number];

/** Codes returned by `parse` for frames that cannot be accepted. */
export const PARSE_ERROR_CODES = [
  'FRAME_TOO_LARGE',
  'INVALID_JSON',
  'INVALID_ENVELOPE',
  'UNSUPPORTED_VERSION',
  'UNKNOWN_TYPE',
  'INVALID_PAYLOAD',
] as const;
export type ParseErrorCode = (typeof PARSE_ERROR_CODES)[number];

/** How a task's files were isolated: its own git worktree, the checkout read-only, or in place (not a git repo). */
export const WORKSPACE_MODES = ['worktree', 'read-only', 'in-place'] as const;
export type WorkspaceMode = (typeof WORKSPACE_MODES)[number];

/** Things about a task's workspace the thread should tell the person. */
export const WORKSPACE_NOTICES = [
  /** The project is not a git repository: the task worked in place, one writer at a time. */
  'NOT_A_GIT_REPO',
  /** The checkout had uncommitted changes; the task started from the committed base and did not see them. */
  'BASE_DIRTY',
  /** The checkout's HEAD moved while the task ran; the branch stays on the base it started from. */
  'HEAD_MOVED',
  /** A follow-up found its worktree gone and recreated it from the task's branch. */
  'WORKTREE_RECREATED',
  /** A follow-up found its branch gone (discarded) and started a new one from the base. */
  'BRANCH_RECREATED',
] as const;
export type WorkspaceNotice = (typeof WORKSPACE_NOTICES)[number];

/** What the cloud may ask an agent to do with a task's branch. */
export const WORKSPACE_ACTIONS = ['create_pr', 'show_diff', 'discard'] as const;
export type WorkspaceAction = (typeof WORKSPACE_ACTIONS)[number];

/** How a workspace request ended. */
export const WORKSPACE_RESULT_CODES = [
  'PR_CREATED',
  /** The branch was pushed, but origin is not on GitHub (or no token is set): no pull request. */
  'PUSHED_NO_PR',
  'DIFF',
  'DISCARDED',
  /** The branch has no commits beyond its base: nothing to push or show. */
  'NO_CHANGES',
  'NOT_FOUND',
  'NO_REMOTE',
  'PUSH_FAILED',
  'GITHUB_ERROR',
  'PATH_NOT_ALLOWED',
  'FAILED',
] as const;
export type WorkspaceResultCode = (typeof WORKSPACE_RESULT_CODES)[number];

/** Largest patch an agent sends for "Show diff"; longer ones are cut and say so. */
export const MAX_DIFF_BYTES = 256 * 1024;
/**
 * How an agent confines the commands Claude Code runs: `on` (OS sandbox), `off` (the operator turned it
 * off: commands run unconfined), `unavailable` (the sandbox cannot run on this machine, so every command
 * is asked for in the thread).
 */
export const SANDBOX_MODES = ['on', 'off', 'unavailable'] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];

/** Why Claude Code asks a person before a tool call runs. */
export const PERMISSION_REASONS = [
  /** A command asks to run outside the sandbox (its retry after the sandbox blocked it). */
  'unsandboxed_command',
  /** A command wants a host outside BEMATIC_SANDBOX_ALLOWED_DOMAINS. */
  'network',
  /** The call matches an operator's `ask` rule (BEMATIC_APPROVAL_RULES). */
  'approval_rule',
  /** The agent cannot sandbox commands, so each one is asked for. */
  'no_sandbox',
  /** Anything else Claude Code asks about. */
  'other',
] as const;
export type PermissionReason = (typeof PERMISSION_REASONS)[number];

/** The answer to a permission request, as a code. */
export const PERMISSION_DECISIONS = [
  'approved',
  /** Approved, and the same request is approved for the rest of the task without asking. */
  'approved_for_task',
  'denied',
  /** Nobody answered within BEMATIC_APPROVAL_TIMEOUT_MS. */
  'timed_out',
  /** The task was cancelled or ended while the request waited. */
  'cancelled',
  /** The request could not reach a person (connection lost, cloud restarted, no thread to ask in). */
  'undeliverable',
] as const;
export type PermissionDecision = (typeof PERMISSION_DECISIONS)[number];
export const isApproval = (d: PermissionDecision): boolean => d === 'approved' || d === 'approved_for_task';
