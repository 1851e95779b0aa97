import { describe, expect, it } from 'vitest';
import { AllowedHosts } from './allowed-hosts.js';
import { ConsoleSessions } from './console-session.js';

describe('ConsoleSessions', () => {
  it('trades a login token for a session once, and only within a day', () => {
    const clock = { now: 1_700_000_000_000 };
    const s = new ConsoleSessions({ now: () => clock.now });
    const token = s.issueLoginToken();
    expect(token).toMatch(/^[\w-]{32}$/);
    const session = s.signIn(token);
    expect(session).toMatch(/^[\w-]{43}$/);
    expect(s.hasSession(session!)).toBe(true);
    expect(s.signIn(token)).toBeNull();
    const late = s.issueLoginToken();
    clock.now += 24 * 3600_000;
    expect(s.signIn(late)).toBeNull();
    expect(s.hasSession(undefined)).toBe(false);
    expect(s.hasSession('made-up')).toBe(false);
  });

  it('ends sessions after 30 days or on sign-out', () => {
    const clock = { now: 0 };
    const s = new ConsoleSessions({ now: () => clock.now });
    const a = s.signIn(s.issueLoginToken())!;
    const b = s.signIn(s.issueLoginToken())!;
    s.signOut(b);
    expect(s.hasSession(b)).toBe(false);
    clock.now += 30 * 24 * 3600_000 - 1;
    expect(s.hasSession(a)).toBe(true);
    clock.now += 1;
    expect(s.hasSession(a)).toBe(false);
  });

  it('accepts the configured token as a reusable sign-in and as a bearer token; no token, no bearer', () => {
    const s = new ConsoleSessions({ token: 'deployment-token-1234567890' });
    expect(s.signIn('deployment-token-1234567890')).not.toBeNull();
    expect(s.signIn('deployment-token-1234567890')).not.toBeNull();
    expect(s.acceptsBearer('Bearer deployment-token-1234567890')).toBe(true);
    expect(s.acceptsBearer('bearer deployment-token-1234567890')).toBe(true);
    expect(s.acceptsBearer('Bearer deployment-token-123456789')).toBe(false);
    expect(s.acceptsBearer('deployment-token-1234567890')).toBe(false);
    expect(s.acceptsBearer(undefined)).toBe(false);
    const open = new ConsoleSessions();
    expect(open.acceptsBearer('Bearer ')).toBe(false);
    expect(open.acceptsBearer('Bearer anything')).toBe(false);
    expect(open.signIn('')).toBeNull();
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
