import type { TaskErrorCode } from './constants.js';

/**
 * What the receiver of a decision may do with it: `later` (not now — the same request can succeed once the
 * condition clears), `never` (the request itself is wrong — asking again cannot help). Every decision code
 * below has exactly one; receivers read this table, never the human text that travels beside the code.
 */
export type Retry = 'later' | 'never';

/** Why an agent refuses a TASK_SUBMIT (TASK_ACK {accepted:false}). */
export const TASK_REFUSALS = {
  /** Every slot is taken and the agent keeps no local queue for more. */
  AT_CAPACITY: { retry: 'later' },
  /** The machine is busy (CPU or memory above its threshold); detail in TASK_ACK.overload. */
  OVERLOADED: { retry: 'later' },
  /** The agent is stopping and takes no new work; another agent, or this one after its restart, can. */
  SHUTTING_DOWN: { retry: 'later' },
  /** The task's path is outside every root the agent serves. */
  PATH_NOT_ALLOWED: { retry: 'never', errorCode: 'PATH_NOT_ALLOWED' },
  /** The task's workspace (git worktree, branch) cannot be prepared. */
  WORKSPACE_FAILED: { retry: 'never', errorCode: 'WORKSPACE_FAILED' },
  /** The submit itself cannot be run (e.g. it contradicts the agent's configuration). */
  INVALID_TASK: { retry: 'never', errorCode: 'INVALID_REQUEST' },
  /**
   * The agent already finished this task; its terminal message is (or was) on its way. Nothing to resend and
   * nothing to fail: the result decides.
   */
  DUPLICATE: { retry: 'never' },
} as const satisfies Record<string, { retry: Retry; errorCode?: TaskErrorCode }>;
export type TaskRefusalCode = keyof typeof TASK_REFUSALS;
export const TASK_REFUSAL_CODES = Object.keys(TASK_REFUSALS) as [TaskRefusalCode, ...TaskRefusalCode[]];

/** Why the cloud refuses an AUTH_REQUEST (AUTH_RESPONSE {success:false}). */
export const AUTH_FAILURES = {
  /** The key is not one the cloud issued (or is malformed). */
  INVALID_KEY: { retry: 'never' },
  /** The key belongs to a different agent id. */
  UNKNOWN_AGENT: { retry: 'never' },
  KEY_REVOKED: { retry: 'never' },
  KEY_EXPIRED: { retry: 'never' },
  /** Too many failed attempts from this address for this agent id; wait and try again. */
  RATE_LIMITED: { retry: 'later' },
  /** The peer speaks another protocol version; upgrade one side. */
  UNSUPPORTED_PROTOCOL_VERSION: { retry: 'never' },
  /** The first frame was not a readable AUTH_REQUEST. */
  INVALID_FIRST_FRAME: { retry: 'never' },
  /** No AUTH_REQUEST arrived in time. */
  AUTH_TIMEOUT: { retry: 'later' },
} as const satisfies Record<string, { retry: Retry }>;
export type AuthFailureCode = keyof typeof AUTH_FAILURES;
export const AUTH_FAILURE_CODES = Object.keys(AUTH_FAILURES) as [AuthFailureCode, ...AuthFailureCode[]];

/** Why a frame was not accepted (SYSTEM_ERROR.code), from either side. */
export const SYSTEM_ERRORS = {
  FRAME_TOO_LARGE: { retry: 'never' },
  INVALID_JSON: { retry: 'never' },
  INVALID_ENVELOPE: { retry: 'never' },
  UNSUPPORTED_VERSION: { retry: 'never' },
  UNKNOWN_TYPE: { retry: 'never' },
  INVALID_PAYLOAD: { retry: 'never' },
  /** A second AUTH_REQUEST on an authenticated connection. */
  ALREADY_AUTHENTICATED: { retry: 'never' },
  /** A message other than AUTH_* before authentication. */
  NOT_AUTHENTICATED: { retry: 'later' },
  /** A message type the receiver never accepts from this sender. */
  UNEXPECTED_TYPE: { retry: 'never' },
  UNKNOWN_TASK: { retry: 'never' },
  /** The task is assigned to another agent. */
  TASK_NOT_OWNED: { retry: 'never' },
  /** The message is from an earlier attempt of the task than the one in force; it was ignored. */
  STALE_ATTEMPT: { retry: 'never' },
  /** The receiver failed while handling a valid message; the sender may try again. */
  INTERNAL_ERROR: { retry: 'later' },
} as const satisfies Record<string, { retry: Retry }>;
export type SystemErrorCode = keyof typeof SYSTEM_ERRORS;
export const SYSTEM_ERROR_CODES = Object.keys(SYSTEM_ERRORS) as [SystemErrorCode, ...SystemErrorCode[]];

/** "Not now" (true) or "never" (false), for any decision code. */
export function isRetryable(code: TaskRefusalCode | AuthFailureCode | SystemErrorCode): boolean {
  const entry =
    (TASK_REFUSALS as Record<string, { retry: Retry }>)[code] ??
    (AUTH_FAILURES as Record<string, { retry: Retry }>)[code] ??
    (SYSTEM_ERRORS as Record<string, { retry: Retry }>)[code];
  return entry?.retry === 'later';
}

/** The TASK_ERROR code a task fails with when an agent refuses it for good; none for codes that never fail it. */
export function refusalErrorCode(code: TaskRefusalCode): TaskErrorCode | undefined {
  const entry: { retry: Retry; errorCode?: TaskErrorCode } = TASK_REFUSALS[code];
  return entry.errorCode;
}

/** Resources the agent's gate watches. */
export const OVERLOAD_RESOURCES = ['cpu', 'memory'] as const;
export type OverloadResource = (typeof OVERLOAD_RESOURCES)[number];
