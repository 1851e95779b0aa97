import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'bematic_session';
/** A login link not used within this time stops working. */
const LOGIN_TOKEN_TTL_MS = 24 * 3600_000;
const SESSION_TTL_MS = 30 * 24 * 3600_000;

export interface ConsoleSessionOptions {
  /** BEMATIC_CONSOLE_TOKEN: a reusable token for deployments (login form, or `Authorization: Bearer`). */
  token?: string;
  now?: () => number;
}

/**
 * Who may use the console and the /api routes. A person signs in once, with
 * the one-time login link printed at start-up or the configured token, and
 * gets a random session id in an HttpOnly, SameSite=Strict cookie. Programs
 * (the CLI, the benchmark) send the configured token as a bearer token.
 * Only hashes of tokens and session ids are held, in memory: a restart signs
 * everyone out and prints a new link.
 */
export class ConsoleSessions {
  private readonly configured: Buffer | null;
  private readonly now: () => number;
  /** hash(login token) → expiry */
  private readonly loginTokens = new Map<string, number>();
  /** hash(session id) → expiry */
  private readonly sessions = new Map<string, number>();

  constructor(opts: ConsoleSessionOptions = {}) {
    this.configured = opts.token ? digest(opts.token) : null;
    this.now = opts.now ?? Date.now;
  }

  /** A fresh one-time login token (for the start-up banner's link). */
  issueLoginToken(): string {
    const token = randomBytes(24).toString('base64url');
    this.loginTokens.set(hex(token), this.now() + LOGIN_TOKEN_TTL_MS);
    return token;
  }

  /** Trade a login token (one-time or configured) for a new session id; null when it is not valid. */
  signIn(token: string): string | null {
    if (!this.isConfiguredToken(token)) {
      const key = hex(token);
      const expires = this.loginTokens.get(key);
      if (expires === undefined) return null;
      this.loginTokens.delete(key);
      if (expires <= this.now()) return null;
    }
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(hex(id), this.now() + SESSION_TTL_MS);
    this.prune();
    return id;
  }

  signOut(sessionId: string): void {
    this.sessions.delete(hex(sessionId));
  }

  hasSession(sessionId: string | undefined): boolean {
    if (!sessionId) return false;
    const expires = this.sessions.get(hex(sessionId));
    return expires !== undefined && expires > this.now();
  }

  /** `Authorization: Bearer <BEMATIC_CONSOLE_TOKEN>`; never true when no token is configured. */
  acceptsBearer(header: string | undefined): boolean {
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    return m?.[1] !== undefined && this.isConfiguredToken(m[1]);
  }

  private isConfiguredToken(token: string): boolean {
    return this.configured !== null && timingSafeEqual(digest(token), this.configured);
  }

  private prune(): void {
    const now = this.now();
    for (const map of [this.sessions, this.loginTokens])
      for (const [k, expires] of map) if (expires <= now) map.delete(k);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
function hex(s: string): string {
  return digest(s).toString('hex');
}
