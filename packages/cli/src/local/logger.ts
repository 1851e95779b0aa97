import { secretSafeLogOptions } from '@bematic/cloud';
import type { LogFormat } from '@bematic/protocol';
import { type Logger, pino } from 'pino';

/** `auto`: human-readable on a terminal, JSON lines otherwise (for log shippers); secrets redacted in both. */
export function createCliLogger(level: string, format: LogFormat = 'auto'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  if (pretty) {
    return pino({
      level,
      ...secretSafeLogOptions(),
      transport: {
        target: 'pino-pretty',
        options: {
          colorize: process.stdout.isTTY === true,
          ignore: 'pid,hostname',
          translateTime: 'SYS:HH:MM:ss',
        },
      },
    });
  }
  return pino({ level, ...secretSafeLogOptions() });
}
