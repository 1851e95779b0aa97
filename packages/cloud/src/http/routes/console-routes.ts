import type { FastifyInstance } from 'fastify';
import { ConsoleActionBody, ConsoleMessageBody } from '../console-api.js';
import { validate } from '../http-error.js';
import type { RouteContext } from '../http-server.js';

/** The web console: threads, what the person types and clicks, and the live event stream. */
export function registerConsoleRoutes(
  app: FastifyInstance,
  { deps, consoleApi, stream, user }: RouteContext,
): void {
  app.get<{ Querystring: { channel?: string } }>('/api/console/threads', async (req) => {
    const channelId = req.query.channel ?? user.channelId;
    return { channelId, userId: user.userId, threads: deps.console.threads(channelId, user.userId) };
  });

  app.post('/api/console/messages', async (req, reply) => {
    const body = validate(ConsoleMessageBody, req.body, 'INVALID_BODY');
    return reply.code(202).send({ ok: true, ...(await consoleApi.message(body)) });
  });

  app.post('/api/console/actions', async (req, reply) => {
    const body = validate(ConsoleActionBody, req.body, 'INVALID_BODY');
    return reply.code(202).send({ ok: true, ...consoleApi.action(body) });
  });

  app.get('/api/events', (_req, reply) => {
    reply.hijack();
    stream.open(reply.raw);
  });
}
