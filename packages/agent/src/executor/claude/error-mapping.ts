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

const SECRET_PATTERNS: RegExp[] = [
  /sk-ant-[A-Za-z0-9_-]{4,}/g,
  /\bxox[abposr]-[A-Za-z0-9-]{4,}/g,
  /\bxapp-[A-Za-z0-9-]{4,}/g,
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  /\b(api[_-]?key|token|secret|password)(["']?\s*[=:]\s*["']?)[^\s"',;]{4,}/gi,
];

/** Removes credentials from text that may reach Slack or logs. */
export function redactSecrets(text: string, knownSecrets: readonly string[] = []): string {
  let out = text;
  for (const secret of knownSecrets) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  for (const re of SECRET_PATTERNS) {
    out = out.replace(re, (match, p1: unknown, p2: unknown) =>
      typeof p1 === 'string' && typeof p2 === 'string' && /[=:]/.test(p2)
        ? `${p1}${p2}[redacted]`
        : typeof p1 === 'string' && /^(bearer|basic)$/i.test(p1)
          ? `${p1} [redacted]`
          : match.startsWith('sk-ant-')
            ? 'sk-ant-[redacted]'
            : '[redacted]',
    );
  }
  return out;
}
