import type { Logger } from 'pino';
import type { Middleware } from './types.js';

export function createLoggingMiddleware(logger: Logger, now: () => number = Date.now): Middleware {
  return {
    name: 'logging',
    async run(ctx, next) {
      const r = ctx.request;
      const log = logger.child({
        requestId: ctx.requestId,
        kind: r.kind,
        user: r.userId,
        channel: r.channelId,
      });
      const start = now();
      log.debug({ text: r.text.slice(0, 200) }, 'chat request received');
      try {
        await next();
      } catch (err) {
        log.error({ err }, 'chat request failed');
        throw err;
      } finally {
        const ms = now() - start;
        if (ctx.rejection) log.info({ ms, code: ctx.rejection.code }, 'chat request rejected');
        else log.info({ ms, tasksCreated: ctx.tasksCreated }, 'chat request handled');
      }
    },
  };
}
