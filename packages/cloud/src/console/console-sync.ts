import type { Logger } from 'pino';
import { z } from 'zod';
import type { CacheBus } from '../cluster/cache-bus.js';
import type { ConsoleChatSurface } from './console-surface.js';

export const CONSOLE_SYNC_CHANNEL = 'bematic_console';

/** The console ts salt of an instance (ConsoleSurfaceOptions.tsSalt): its id hashed to 0–999. */
export function consoleTsSalt(instanceId: string): number {
  let h = 0;
  for (const c of instanceId) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % 1000;
}

/** Which message another instance wrote; the receiver reads it from the store (it is already there). */
const Change = z.object({ ts: z.string().regex(/^\d{1,12}\.\d{6}$/) });

/**
 * The web console across instances: every message one instance stores (posted, edited, reacted to) is
 * announced on channel `bematic_console` of the bus once it is in the database, and the other instances
 * read it into their console and show it to their viewers — so a conversation started on one instance,
 * whose task runs through another, reads the same on both, and a reply in its thread works on either.
 * Changes from others are applied one at a time, in the order they arrived. Returns the detach.
 */
export function shareConsole(opts: {
  surface: ConsoleChatSurface;
  bus: CacheBus;
  logger: Logger;
}): () => void {
  const { surface, logger } = opts;
  let chain: Promise<void> = Promise.resolve();
  const apply = (work: () => Promise<unknown>) => {
    chain = chain.then(work).then(
      () => undefined,
      (err: unknown) => logger.warn({ err }, 'console change from another instance not applied'),
    );
  };
  const channel = opts.bus.channel(CONSOLE_SYNC_CHANNEL, {
    receive: (body) => {
      const change = Change.safeParse(body);
      if (!change.success) {
        logger.warn({ issues: change.error.issues.slice(0, 3) }, 'unreadable console change ignored');
        return;
      }
      apply(() => surface.changedElsewhere(change.data.ts));
    },
    // Changes may have been missed while the session was away: the recent threads are read again.
    resumed: () => apply(() => surface.restore()),
  });
  return surface.onStored((ts) => channel.send({ ts }));
}
