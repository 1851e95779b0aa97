import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ProbeResult } from '../health.js';
import { type RouteContext, sendError } from '../http-server.js';

export function registerHealthRoutes(app: FastifyInstance, { deps }: RouteContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const [database, gateway, cluster] = await Promise.all([
      probe(deps.health.database),
      probe(deps.health.gateway),
      deps.health.cluster?.().catch((err: unknown) => ({ error: (err as Error).message })),
    ]);
    const ready = database.ok && gateway.ok;
    const reasons = [database, gateway].filter((p) => !p.ok).map((p) => p.detail ?? 'not ready');
    return reply
      .code(ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({
        status: ready ? 'ready' : 'not ready',
        checks: { database, gateway },
        reasons,
        ...(cluster && { cluster }),
      });
  });

  app.get('/metrics', async (req, reply) => {
    if (!deps.metrics) return sendError(reply, 404, 'NOT_FOUND', 'metrics are not enabled');
    if (deps.metricsToken && !bearerMatches(req.headers.authorization, deps.metricsToken))
      return sendError(reply, 401, 'UNAUTHENTICATED', 'send Authorization: Bearer <BEMATIC_METRICS_TOKEN>');
    const text = await deps.metrics.text();
    return reply.header('content-type', deps.metrics.contentType).send(text);
  });
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const sent = Buffer.from(header?.replace(/^Bearer\s+/i, '') ?? '');
  const want = Buffer.from(token);
  return sent.length === want.length && timingSafeEqual(sent, want);
}

async function probe(fn: () => ProbeResult | Promise<ProbeResult>): Promise<ProbeResult> {
  try {
    return await fn();
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}
