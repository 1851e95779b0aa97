import { secretSafeLogOptions } from '@bematic/cloud';
import { type Logger, pino } from 'pino';

/** Human-readable logs on a terminal, JSON lines otherwise (for log shippers); secrets redacted in both. */
export function createCliLogger(level: string): Logger {
  if (process.stdout.isTTY && process.env.BEMATIC_LOG_FORMAT !== 'json') {
    return pino({
      level,
      ...secretSafeLogOptions(),
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, ...secretSafeLogOptions() });
}
