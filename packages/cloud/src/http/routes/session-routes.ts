import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { SESSION_COOKIE } from '../access/console-session.js';
import { hasSession } from '../access/guard.js';
import type { SessionInfo } from '../api-types.js';
import { HttpError } from '../http-error.js';
import type { RouteContext } from '../http-server.js';

const SESSION_MAX_AGE_S = 30 * 24 * 3600;
const LoginBody = z.object({ token: z.string().min(1).max(500) });
/** Only a path on this server: never an absolute URL (open redirect). */
const NextPath = z
  .string()
  .regex(/^\/(?!\/)[\w\-./?=&%]*$/)
  .catch('/');

/**
 * Signing in: the start-up banner prints `/login?token=…` (one use), and a
 * deployment's BEMATIC_CONSOLE_TOKEN can be typed into the page's sign-in
 * form (POST /login). Either gives a session cookie.
 */
export function registerSessionRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const secure = ctx.deps.publicUrl?.startsWith('https:') ?? false;

  const signIn = async (reply: FastifyReply, token: string): Promise<boolean> => {
    const session = await ctx.sessions.signIn(token);
    if (!session) return false;
    void reply.setCookie(SESSION_COOKIE, session, {
      httpOnly: true,
      sameSite: 'strict',
      secure,
      path: '/',
      maxAge: SESSION_MAX_AGE_S,
    });
    return true;
  };

  app.get<{ Querystring: { token?: string; next?: string } }>('/login', async (req, reply) => {
    const next = NextPath.parse(req.query.next ?? '/');
    const token = req.query.token;
    if (token && !(await signIn(reply, token))) {
      void ctx.deps.audit?.record('http.bad_request', {
        actor: 'http',
        resourceType: 'route',
        resourceId: '/login',
        details: {
          code: 'LOGIN_REFUSED',
          message: 'unknown, used or expired login link',
          method: req.method,
        },
      });
      return reply.redirect(`/?login=refused&next=${encodeURIComponent(next)}`, 303);
    }
    return reply.redirect(next, 303);
  });

  app.post('/login', async (req, reply) => {
    const parsed = LoginBody.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, 'INVALID_BODY', 'send {"token": "…"}');
    if (!(await signIn(reply, parsed.data.token)))
      throw new HttpError(401, 'LOGIN_REFUSED', 'that token is not valid (a login link works once)');
    return { ok: true };
  });

  app.post('/logout', async (req, reply) => {
    const session = req.cookies[SESSION_COOKIE];
    if (session) await ctx.sessions.signOut(session);
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });

  app.get(
    '/api/session',
    async (req): Promise<SessionInfo> => ({
      signedIn: await hasSession(req, ctx),
      user: { id: ctx.user.userId, name: ctx.user.userName },
      consoleChannelId: ctx.user.channelId,
    }),
  );
}
