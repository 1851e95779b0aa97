import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../../../test/support/database.js';
import { AllowedHosts } from './allowed-hosts.js';
import { ConsoleSessions } from './console-session.js';

describe('ConsoleSessions', () => {
  let t: TestDb;
  beforeEach(async () => {
    t = await openTestDb();
  });
  afterEach(async () => {
    await t.close();
  });

  it('trades a login token for a session once, and only within a day; stores hashes only', async () => {
    const clock = { now: 1_700_000_000_000 };
    const s = new ConsoleSessions({ store: t.repos.consoleCredentials, now: () => clock.now });
    const token = await s.issueLoginToken();
    expect(token).toMatch(/^[\w-]{32}$/);
    const session = await s.signIn(token);
    expect(session).toMatch(/^[\w-]{43}$/);
    expect(await s.hasSession(session ?? '')).toBe(true);
    const rows = await t.database.db.selectFrom('console_credentials').selectAll().execute();
    expect(rows.map((r) => r.hash)).not.toContain(session);
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.hash))).toBe(true);
    expect(await s.signIn(token)).toBeNull();
    const late = await s.issueLoginToken();
    clock.now += 24 * 3600_000;
    expect(await s.signIn(late)).toBeNull();
    expect(await s.hasSession(undefined)).toBe(false);
    expect(await s.hasSession('made-up')).toBe(false);
  });

  it('ends sessions after 30 days or on sign-out', async () => {
    const clock = { now: 0 };
    const s = new ConsoleSessions({ store: t.repos.consoleCredentials, now: () => clock.now });
    const a = (await s.signIn(await s.issueLoginToken())) ?? '';
    const b = (await s.signIn(await s.issueLoginToken())) ?? '';
    await s.signOut(b);
    expect(await s.hasSession(b)).toBe(false);
    clock.now += 30 * 24 * 3600_000 - 1;
    expect(await s.hasSession(a)).toBe(true);
    clock.now += 1;
    expect(await s.hasSession(a)).toBe(false);
  });

  it('accepts the configured token as a reusable sign-in and as a bearer token; no token, no bearer', async () => {
    const s = new ConsoleSessions({
      store: t.repos.consoleCredentials,
      token: 'deployment-token-1234567890',
    });
    expect(await s.signIn('deployment-token-1234567890')).not.toBeNull();
    expect(await s.signIn('deployment-token-1234567890')).not.toBeNull();
    expect(s.acceptsBearer('Bearer deployment-token-1234567890')).toBe(true);
    expect(s.acceptsBearer('bearer deployment-token-1234567890')).toBe(true);
    expect(s.acceptsBearer('Bearer deployment-token-123456789')).toBe(false);
    expect(s.acceptsBearer('deployment-token-1234567890')).toBe(false);
    expect(s.acceptsBearer(undefined)).toBe(false);
    const open = new ConsoleSessions({ store: t.repos.consoleCredentials });
    expect(open.acceptsBearer('Bearer ')).toBe(false);
    expect(open.acceptsBearer('Bearer anything')).toBe(false);
    expect(await open.signIn('')).toBeNull();
  });

  it('fails closed: a database error is thrown, never taken as signed in', async () => {
    const s = new ConsoleSessions({ store: t.repos.consoleCredentials });
    await t.database.close();
    await expect(s.hasSession('some-session')).rejects.toThrow();
    t = await openTestDb();
  });
});

describe('AllowedHosts', () => {
  it('accepts loopback names on any port, and the public URL host; nothing else', () => {
    const hosts = new AllowedHosts('https://Bematic.Example.com:8443/base');
    for (const ok of [
      'localhost',
      'localhost:3000',
      'LOCALHOST:1',
      '127.0.0.1:80',
      '[::1]:3000',
      'bematic.example.com',
    ]) {
      expect({ ok, allowed: hosts.allows(ok) }).toEqual({ ok, allowed: true });
    }
    for (const bad of [
      undefined,
      '',
      'evil.example:3000',
      'localhost.evil.example',
      '127.0.0.2',
      'bematic.example.com.evil.example',
      '0.0.0.0:3000',
      'user@localhost',
      'localhost/../x',
    ]) {
      expect({ bad, allowed: hosts.allows(bad) }).toEqual({ bad, allowed: false });
    }
    expect(hosts.allowsOrigin('http://localhost:3000')).toBe(true);
    expect(hosts.allowsOrigin('https://bematic.example.com')).toBe(true);
    expect(hosts.allowsOrigin('null')).toBe(false);
    expect(hosts.allowsOrigin('http://evil.example')).toBe(false);
  });
});
