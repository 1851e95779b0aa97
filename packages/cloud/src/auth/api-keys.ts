import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKey, ApiKeyRepository, AuditLogRepository } from '../db/repositories/types.js';

/**
 * Agent API keys look like `bmk_<8 hex prefix>_<43 chars base64url secret>`.
 * The prefix is stored in clear to find the candidate row and to show the key
 * in listings; only a hash of the whole key is stored.
 *
 * Hashing: the secret is 256 random bits, so there is nothing to brute-force
 * from the hash and a slow KDF (scrypt, argon2) would only add latency to every
 * agent connection. SHA-256 is enough; comparison is constant-time anyway.
 */
const KEY_PATTERN = /^bmk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedApiKey {
  key: string;
  prefix: string;
  keyHash: string;
}

export function generateApiKey(): GeneratedApiKey {
  const prefix = `bmk_${randomBytes(4).toString('hex')}`;
  const key = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix, keyHash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The shareable part of a key (`bmk_3f9a0c1d`), or null when it is not shaped like one of ours. */
export function apiKeyPrefix(key: string): string | null {
  const m = KEY_PATTERN.exec(key);
  return m ? `bmk_${m[1]}` : null;
}

export type ApiKeyRejection = 'malformed' | 'unknown-key' | 'wrong-agent' | 'revoked' | 'expired';

export type ApiKeyVerification = { ok: true; record: ApiKeyInfo } | { ok: false; reason: ApiKeyRejection };

/** An API key record without its hash: what listings and callers get. */
export type ApiKeyInfo = Omit<ApiKey, 'keyHash'>;

export interface ApiKeyServiceDeps {
  apiKeys: ApiKeyRepository;
  audit: AuditLogRepository;
  now?: () => number;
}

export class ApiKeyService {
  private readonly now: () => number;

  constructor(private readonly deps: ApiKeyServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Creates a key bound to one agent. The clear key is returned here and never again. */
  async create(
    agentId: string,
    opts: { label?: string | null; expiresAt?: number | null; actor?: string } = {},
  ): Promise<{ key: string; record: ApiKeyInfo }> {
    const { key, prefix, keyHash } = generateApiKey();
    const stored = await this.deps.apiKeys.create({
      agentId,
      prefix,
      keyHash,
      label: opts.label ?? null,
      expiresAt: opts.expiresAt ?? null,
    });
    await this.deps.audit.log({
      action: 'api_key.created',
      actor: opts.actor ?? 'system',
      resourceType: 'api_key',
      resourceId: stored.id,
      details: { agentId, prefix, label: stored.label, expiresAt: stored.expiresAt },
    });
    return { key, record: withoutHash(stored) };
  }

  /**
   * Checks a presented key for an agent. Never throws for bad input. The caller
   * (the gateway) audits failures, because it knows the remote address.
   */
  async verify(agentId: string, presentedKey: string): Promise<ApiKeyVerification> {
    const prefix = apiKeyPrefix(presentedKey);
    if (prefix === null) return { ok: false, reason: 'malformed' };
    const presentedHash = Buffer.from(hashApiKey(presentedKey), 'hex');
    const candidates = await this.deps.apiKeys.findByPrefix(prefix);
    const match = candidates.find((c) => {
      const stored = Buffer.from(c.keyHash, 'hex');
      return stored.length === presentedHash.length && timingSafeEqual(stored, presentedHash);
    });
    if (!match) return { ok: false, reason: 'unknown-key' };
    if (match.agentId !== agentId) return { ok: false, reason: 'wrong-agent' };
    if (match.revokedAt !== null) return { ok: false, reason: 'revoked' };
    const now = this.now();
    if (match.expiresAt !== null && match.expiresAt <= now) return { ok: false, reason: 'expired' };
    await this.deps.apiKeys.touch(match.id, now);
    return { ok: true, record: withoutHash({ ...match, lastUsedAt: now }) };
  }

  async revoke(id: string, actor = 'system'): Promise<boolean> {
    const revoked = await this.deps.apiKeys.revoke(id, this.now());
    await this.deps.audit.log({
      action: revoked ? 'api_key.revoked' : 'api_key.revoke_failed',
      actor,
      resourceType: 'api_key',
      resourceId: id,
      details: revoked ? {} : { reason: 'unknown or already revoked key' },
    });
    return revoked;
  }

  async list(agentId?: string): Promise<ApiKeyInfo[]> {
    return (await this.deps.apiKeys.list(agentId)).map(withoutHash);
  }
}

function withoutHash(k: ApiKey): ApiKeyInfo {
  const { keyHash: _hash, ...rest } = k;
  return rest;
}
