import { LOG_REDACT_PATHS, redactSecrets } from '@bematic/protocol';
import type { LoggerOptions } from 'pino';

/** Redacts every string in a log record, keeping errors readable (their message and stack are not enumerable). */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return {
      type: value.name,
      message: redactSecrets(value.message),
      ...(value.stack !== undefined && { stack: redactSecrets(value.stack) }),
    };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

/**
 * Options every Bematic root logger is built with: known credential fields censored by pino's `redact`,
 * and every string in a record (messages included) passed through the shared redaction rules.
 */
export function secretSafeLogOptions(): Pick<LoggerOptions, 'redact' | 'formatters' | 'hooks'> {
  return {
    redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' },
    formatters: { log: (record) => scrub(record) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        const clean = args.map((a) => scrub(a)) as Parameters<typeof method>;
        method.apply(this, clean);
      },
    },
  };
}
