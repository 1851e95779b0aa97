import type { TaskErrorCode } from '@bematic/protocol';

export interface MappedError {
  errorCode: TaskErrorCode;
  recoverable: boolean;
}

/** The assistant-message error kinds Claude Code reports (SDKAssistantMessageError). */
const KIND_TO_CODE: Record<string, MappedError> = {
  rate_limit: { errorCode: 'RATE_LIMITED', recoverable: true },
  overloaded: { errorCode: 'MODEL_OVERLOADED', recoverable: true },
  server_error: { errorCode: 'MODEL_SERVER_ERROR', recoverable: true },
  authentication_failed: { errorCode: 'AUTH_FAILED', recoverable: false },
  oauth_org_not_allowed: { errorCode: 'AUTH_FAILED', recoverable: false },
  account_on_hold: { errorCode: 'AUTH_FAILED', recoverable: false },
  billing_error: { errorCode: 'AUTH_FAILED', recoverable: false },
  invalid_request: { errorCode: 'INVALID_REQUEST', recoverable: false },
  model_not_found: { errorCode: 'INVALID_REQUEST', recoverable: false },
};

/**
 * Classifies a failed model call. The HTTP status wins (Claude Code reports it as
 * `api_error_status`); the assistant error kind and then the text are fallbacks.
 */
export function mapModelError(
  status: number | null | undefined,
  kind: string | undefined,
  text: string,
): MappedError {
  // Claude Code's own answer when it has no key and no login; it never reached the API.
  if (/not logged in|please run \/login/i.test(text))
    return { errorCode: 'CREDENTIALS_MISSING', recoverable: false };
  if (typeof status === 'number') {
    if (status === 429) return { errorCode: 'RATE_LIMITED', recoverable: true };
    if (status === 529) return { errorCode: 'MODEL_OVERLOADED', recoverable: true };
    if (status === 401 || status === 403) return { errorCode: 'AUTH_FAILED', recoverable: false };
    if (status >= 500) return { errorCode: 'MODEL_SERVER_ERROR', recoverable: true };
    if (status === 400 || status === 404 || status === 413)
      return { errorCode: 'INVALID_REQUEST', recoverable: false };
  }
  const byKind = kind === undefined ? undefined : KIND_TO_CODE[kind];
  if (byKind) return byKind;
  if (/\b529\b|overloaded/i.test(text)) return { errorCode: 'MODEL_OVERLOADED', recoverable: true };
  if (/\b429\b|rate limit/i.test(text)) return { errorCode: 'RATE_LIMITED', recoverable: true };
  if (/\b5\d\d\b/.test(text)) return { errorCode: 'MODEL_SERVER_ERROR', recoverable: true };
  if (/\b40[13]\b|api key|authenticat/i.test(text)) return { errorCode: 'AUTH_FAILED', recoverable: false };
  return { errorCode: 'EXECUTION_FAILED', recoverable: false };
}
