import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AnyMiddlewareArgs, Middleware } from '@slack/bolt';
import type { Logger } from 'pino';
import type { SlackDeliveryRepository } from '../db/repositories/types.js';

/** Slack's own bound: a signed request more than five minutes from now, either way, is refused. */
export const MAX_REQUEST_SKEW_MS = 5 * 60_000;
/** Slack retries for about an hour at most; a day covers every retry and any late replay over Socket Mode. */
export const DELIVERY_RETENTION_MS = 24 * 3600_000;
const PRUNE_EVERY_MS = 3600_000;

/** What identifies one delivery: the event_id of an event, the trigger_id of a slash command or interaction. */
export function deliveryKey(body: unknown): { id: string; kind: string } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as { type?: unknown; event_id?: unknown; trigger_id?: unknown; command?: unknown };
  if (b.type === 'event_callback' && typeof b.event_id === 'string' && b.event_id) {
    return { id: `event:${b.event_id}`, kind: 'event' };
  }
  if (typeof b.trigger_id === 'string' && b.trigger_id) {
    return {
      id: `trigger:${b.trigger_id}`,
      kind: typeof b.command === 'string' ? 'slash_command' : 'interaction',
    };
  }
  return undefined;
}

/**
 * Global Bolt middleware: the first delivery of an event or trigger is handled, a retry or a replay of it is
 * acknowledged and dropped. The claim is durable, so this holds across a restart. A claim whose handling
 * threw is released, so Slack's retry of it gets another chance.
 */
export function deduplicateDeliveries(
  deliveries: SlackDeliveryRepository,
  logger: Logger,
  now: () => number,
): Middleware<AnyMiddlewareArgs> {
  let lastPrune = 0;
  const pruneNow = () => {
    const at = now();
    if (at - lastPrune < PRUNE_EVERY_MS) return;
    lastPrune = at;
    deliveries
      .pruneBefore(at - DELIVERY_RETENTION_MS)
      .then((removed) => {
        if (removed > 0) logger.debug({ removed }, 'slack: pruned old delivery records');
      })
      .catch((err: unknown) => logger.warn({ err }, 'slack: pruning delivery records failed'));
  };

  return async (args) => {
    const key = deliveryKey(args.body);
    if (!key) return args.next();
    pruneNow();
    if (!(await deliveries.claim(key.id, key.kind))) {
      const retryNum = (args.context as { retryNum?: number }).retryNum;
      logger.info(
        { code: 'SLACK_DUPLICATE_DELIVERY', delivery: key.id, retryNum },
        'slack: ignored a repeated delivery',
      );
      const ack = (args as { ack?: () => Promise<void> }).ack;
      if (ack) await ack();
      return;
    }
    try {
      await args.next();
    } catch (error) {
      await deliveries.release(key.id).catch(() => undefined);
      throw error;
    }
  };
}

/**
 * In front of Bolt's HTTP receiver: Bolt refuses requests older than five minutes, but not ones dated in the
 * future. A timestamp outside the window either way is refused before the body is read.
 */
export function rejectSkewedRequests(
  inner: RequestListener,
  logger: Logger,
  now: () => number,
): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const header = req.headers['x-slack-request-timestamp'];
    const seconds = Number(Array.isArray(header) ? header[0] : header);
    if (
      header !== undefined &&
      Number.isFinite(seconds) &&
      Math.abs(now() - seconds * 1000) > MAX_REQUEST_SKEW_MS
    ) {
      logger.warn(
        { code: 'SLACK_REQUEST_SKEWED', skewMs: seconds * 1000 - now() },
        'slack: refused a request outside the 5-minute window',
      );
      req.resume();
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('request timestamp outside the allowed window');
      return;
    }
    inner(req, res);
  };
}
