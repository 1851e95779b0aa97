import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ConsoleCredentialRepository } from '../../db/repositories/types.js';

export const SESSION_COOKIE = 'bematic_session';
/** A login link not used within this time stops working. */
const LOGIN_TOKEN_TTL_MS = 24 * 3600_000;
const SESSION_TTL_MS = 30 * 24 * 3600_000;

export interface ConsoleSessionOptions {
  /** Where login tokens and sessions live (as hashes): the database every instance shares. */
  store: ConsoleCredentialRepository;
  /** BEMATIC_CONSOLE_TOKEN: a reusable token for deployments (login form, or `Authorization: Bearer`). */
  token?: string;
  now?: () => number;
}

/**
 * Who may use the console and the /api routes. A person signs in once, with
 * the one-time login link printed at start-up or the configured token, and
 * gets a random session id in an HttpOnly, SameSite=Strict cookie. Programs
 * (the CLI, the benchmark) send the configured token as a bearer token.
 * Only SHA-256 hashes of login tokens and session ids are kept, in the
 * database, so any instance redeems a link another printed (once: the row is
 * consumed by one DELETE … RETURNING), honours a session another started, and
 * a sign-out on one ends the session on all. Expired rows go at each sign-in.
 * A database error propagates: the caller refuses the request.
 */
export class ConsoleSessions {
  private readonly configured: Buffer | null;
  private readonly store: ConsoleCredentialRepository;
  private readonly now: () => number;

  constructor(opts: ConsoleSessionOptions) {
    this.configured = opts.token ? digest(opts.token) : null;
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
  }

  /** A fresh one-time login token (for the start-up banner's link), redeemable on any instance. */
  async issueLoginToken(): Promise<string> {
    const token = randomBytes(24).toString('base64url');
    await this.store.put('login', hex(token), this.now() + LOGIN_TOKEN_TTL_MS);
    return token;
  }

  /** Trade a login token (one-time or configured) for a new session id; null when it is not valid. */
  async signIn(token: string): Promise<string | null> {
    if (!this.isConfiguredToken(token) && !(await this.store.consume('login', hex(token), this.now())))
      return null;
    const id = randomBytes(32).toString('base64url');
    await this.store.put('session', hex(id), this.now() + SESSION_TTL_MS);
    await this.store.pruneExpired(this.now());
    return id;
  }

  async signOut(sessionId: string): Promise<void> {
    await this.store.remove('session', hex(sessionId));
  }

  async hasSession(sessionId: string | undefined): Promise<boolean> {
    if (!sessionId) return false;
    return this.store.isValid('session', hex(sessionId), this.now());
  }

  /** `Authorization: Bearer <BEMATIC_CONSOLE_TOKEN>`; never true when no token is configured. */
  acceptsBearer(header: string | undefined): boolean {
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    return m?.[1] !== undefined && this.isConfiguredToken(m[1]);
  }

  private isConfiguredToken(token: string): boolean {
    return this.configured !== null && timingSafeEqual(digest(token), this.configured);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
function hex(s: string): string {
  return digest(s).toString('hex');
}
