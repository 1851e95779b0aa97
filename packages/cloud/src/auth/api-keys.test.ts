import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../db/database.js';
import { migrateToLatest } from '../db/migrations/index.js';
import { createRepositories } from '../db/repositories/index.js';
import type { Repositories } from '../db/repositories/types.js';
import { ApiKeyService, apiKeyPrefix, generateApiKey, hashApiKey } from './api-keys.js';

describe('generateApiKey', () => {
  it('makes distinct, well-formed keys whose prefix is shown and whose hash is stored', () => {
    const keys = Array.from({ length: 50 }, () => generateApiKey());
    expect(new Set(keys.map((k) => k.key)).size).toBe(50);
    for (const k of keys) {
      expect(k.key).toMatch(/^bmk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
      expect(apiKeyPrefix(k.key)).toBe(k.prefix);
      expect(k.keyHash).toBe(hashApiKey(k.key));
      expect(k.keyHash).not.toContain(k.key.slice(13));
    }
    expect(apiKeyPrefix('bmk_zz_nope')).toBeNull();
  });
});

describe('ApiKeyService', () => {
  let dir: string;
  let db: Database;
  let repos: Repositories;
  let now = 1_000;
  let service: ApiKeyService;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bematic-keys-'));
    db = await createDatabase(`sqlite:${path.join(dir, 'db.sqlite')}`);
    await migrateToLatest(db);
    repos = createRepositories(db.db, { now: () => now });
    service = new ApiKeyService({ apiKeys: repos.apiKeys, audit: repos.audit, now: () => now });
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies a key for its own agent only, and never stores it in clear', async () => {
    const { key, record } = await service.create('agent-a', { label: 'ci', expiresAt: 5_000 });
    expect(record).toMatchObject({ agentId: 'agent-a', label: 'ci', expiresAt: 5_000 });
    const [stored] = await repos.apiKeys.list('agent-a');
    expect(stored?.keyHash).toBe(hashApiKey(key));
    expect(JSON.stringify(await repos.audit.list())).not.toContain(key);

    now = 2_000;
    expect(await service.verify('agent-a', key)).toMatchObject({ ok: true, record: { lastUsedAt: 2_000 } });
    expect((await service.list('agent-a'))[0]?.lastUsedAt).toBe(2_000);
    expect(await service.verify('agent-b', key)).toEqual({ ok: false, reason: 'wrong-agent' });
    expect(await service.verify('agent-a', `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`)).toEqual({
      ok: false,
      reason: 'unknown-key',
    });
    now = 5_000;
    expect(await service.verify('agent-a', key)).toEqual({ ok: false, reason: 'expired' });
  });

  it('rejects a revoked key and audits creation and revocation', async () => {
    const { key, record } = await service.create('agent-a', { actor: 'admin' });
    expect(await service.revoke(record.id, 'admin')).toBe(true);
    expect(await service.verify('agent-a', key)).toEqual({ ok: false, reason: 'revoked' });
    expect(await service.revoke(record.id, 'admin')).toBe(false);
    const actions = (await repos.audit.list()).map((e) => e.action).sort();
    expect(actions).toEqual(['api_key.created', 'api_key.revoke_failed', 'api_key.revoked']);
  });
});
