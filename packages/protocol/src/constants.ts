/** Wire protocol version carried in every envelope as `v`. Bump on breaking changes. */
export const PROTOCOL_VERSION = 1;

/** Frames larger than this are rejected before JSON parsing. */
export const MAX_FRAME_BYTES = 1024 * 1024;

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
