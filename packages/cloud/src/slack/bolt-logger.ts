import { inspect } from 'node:util';
import { type Logger as BoltLogger, LogLevel } from '@slack/bolt';
import type { Logger } from 'pino';

function format(parts: unknown[]): string {
  return parts
    .map((p) => (typeof p === 'string' ? p : inspect(p, { depth: 3, breakLength: Infinity })))
    .join(' ');
}

/**
 * Bolt, the Web API client and the Socket Mode client log through this, into our pino logger.
 * Their "debug" is a wire trace (it includes message payloads), so it goes to pino's trace level.
 */
export function boltLogger(logger: Logger): BoltLogger {
  let level = LogLevel.INFO;
  return {
    debug: (...msg: unknown[]) => logger.trace(format(msg)),
    info: (...msg: unknown[]) => logger.debug(format(msg)),
    warn: (...msg: unknown[]) => logger.warn(format(msg)),
    error: (...msg: unknown[]) => logger.error(format(msg)),
    setLevel: (next: LogLevel) => {
      level = next;
    },
    getLevel: () => level,
    setName: () => {},
  };
}
