import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../http-error.js';
import type { RouteContext } from '../http-server.js';
import { SESSION_COOKIE } from './console-session.js';

/** Probes and scrapes come from infrastructure that addresses the server by IP; they expose no console. */
const INFRASTRUCTURE = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The doors in front of every route, in order: the Host must be one of ours
 * (DNS rebinding), a state-changing request must come from our own origin,
 * and the JSON API needs a session. The page shell and its assets carry no
 * data and load without a session, so a link from Slack (which a Strict
 * cookie does not follow) opens the page, which then signs in or asks to.
 */
export function registerAccessControl(app: FastifyInstance, ctx: RouteContext): void {
  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0] ?? '/';
    if (INFRASTRUCTURE.has(path)) return;
    if (!ctx.hosts.allows(req.headers.host)) {
      throw new HttpError(
        403,
        'HOST_NOT_ALLOWED',
        `this console answers only to ${ctx.hosts.list().join(', ')}; set BEMATIC_PUBLIC_URL to reach it by another name`,
      );
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') checkSameOrigin(req, ctx);
    if (path.startsWith('/api/') && !(await hasSession(req, ctx))) {
      throw new HttpError(
        401,
        'UNAUTHENTICATED',
        'sign in with the login link printed when Bematic started, or send Authorization: Bearer <BEMATIC_CONSOLE_TOKEN>',
      );
    }
  });
}

/**
 * The configured bearer token, or a session cookie the database knows. Fail-closed: when the
 * database cannot answer, the request is refused (503), never let through.
 */
export async function hasSession(req: FastifyRequest, ctx: RouteContext): Promise<boolean> {
  if (ctx.sessions.acceptsBearer(req.headers.authorization)) return true;
  try {
    return await ctx.sessions.hasSession(req.cookies[SESSION_COOKIE]);
  } catch {
    throw new HttpError(
      503,
      'SESSION_STORE_UNAVAILABLE',
      'the session store cannot be read; try again shortly',
    );
  }
}

/** Browsers send Origin on cross-site POSTs; refuse them so a web page cannot drive the local console. */
function checkSameOrigin(req: FastifyRequest, ctx: RouteContext): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new HttpError(403, 'FORBIDDEN_ORIGIN', 'unreadable Origin header');
  }
  if (host !== req.headers.host || !ctx.hosts.allowsOrigin(origin))
    throw new HttpError(403, 'FORBIDDEN_ORIGIN', `requests from ${origin} are not accepted`);
}
