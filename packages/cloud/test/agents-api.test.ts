import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AGENT_WS_PATH } from '@bematic/protocol';
import { RawAgent } from '@bematic/testkit';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cloud, startCloud } from '../src/app/cloud.js';
import { loadCloudConfig } from '../src/config.js';
import { createDatabase, type Database } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrations/index.js';
import type { AgentRecord } from '../src/db/repositories/types.js';
import type { AgentPage } from '../src/http/api-types.js';

const TOKEN = 'agents-api-console-token-0123456789';
const SEEDED = 230;
const postgresUrl = process.env.BEMATIC_TEST_POSTGRES_URL;
const backends = [
  { name: 'SQLite', postgres: false },
  ...(postgresUrl ? [{ name: 'PostgreSQL', postgres: true }] : []),
];

interface ErrorBody {
  error: { code: string; message: string };
}

/** The listing's order, worked out here from the stored rows: online first, then by id. */
const listingOrder = (rows: AgentRecord[]): string[] =>
  [...rows]
    .sort((a, b) => (a.status === b.status ? (a.id < b.id ? -1 : 1) : a.status === 'online' ? -1 : 1))
    .map((a) => a.id);

/**
 * The agents API of the whole cloud (startCloud: Fastify, gateway, presence, cache) on a real database: a few
 * hundred stored agents, one really connected, one that only has a task waiting for it.
 */
describe.each(backends)('GET /api/agents on $name', ({ postgres }) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bematic-agents-api-'));
  const schema = `bematic_agents_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  let admin: Database | undefined;
  let cloud: Cloud;
  let live: RawAgent;

  beforeAll(async () => {
    let databaseUrl = `sqlite:${path.join(dir, 'bematic.db')}`;
    if (postgres && postgresUrl) {
      admin = await createDatabase(postgresUrl, { schema });
      // Migrated here, knowing its schema: Kysely looks for its bookkeeping tables in every schema otherwise,
      // and another test's, made meanwhile, would pass for this one's.
      await migrateToLatest(admin);
      const url = new URL(postgresUrl);
      url.searchParams.set('options', `-c search_path=${schema}`);
      databaseUrl = url.toString();
    }
    cloud = await startCloud({
      config: loadCloudConfig({
        DATABASE_URL: databaseUrl,
        PORT: '0',
        BEMATIC_CONSOLE_TOKEN: TOKEN,
        BEMATIC_LOG_LEVEL: 'silent',
        BEMATIC_INSTANCE_ID: 'agents-api',
      }),
    });
    for (let i = 0; i < SEEDED; i++) {
      // Stored out of id order, a third of them online.
      const n = (i * 97) % SEEDED;
      await cloud.repos.agents.upsert({
        id: `agent-${String(n).padStart(3, '0')}`,
        hostname: `rack-${n % 7}.lab`,
        version: '0.1.0',
        status: n % 3 === 0 ? 'online' : 'offline',
        lastSeenAt: 1_700_000_000_000 + n,
      });
    }
    const { key } = await cloud.gateway.apiKeys.create('live-agent', { label: 'test' });
    // Registered (its row written) only after its AUTH_RESPONSE went out.
    const registered = new Promise<void>((resolve) => {
      const off = cloud.events.on('agent.online', ({ agentId }) => {
        if (agentId !== 'live-agent') return;
        off();
        resolve();
      });
    });
    live = await RawAgent.accepted(`${cloud.agentUrl}${AGENT_WS_PATH}`, {
      agentId: 'live-agent',
      apiKey: key,
    });
    await registered;
    await cloud.repos.offlineQueue.enqueue({
      agentId: 'ghost-agent',
      taskId: 'task_ghost',
      priority: 'normal',
      payload: {
        taskId: 'task_ghost',
        projectId: 'proj_ghost',
        localPath: dir,
        botName: 'coder',
        command: 'fix',
        prompt: 'fix it',
        systemPrompt: 'You are a careful engineer.',
        model: 'claude-sonnet-4-5',
        allowedTools: ['Read'],
        priority: 'normal',
      },
      expiresAt: Date.now() + 3_600_000,
    });
  });
  afterAll(async () => {
    await live?.close();
    await cloud?.close();
    if (admin) {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db);
      await admin.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const api = (query: string) =>
    fetch(`${cloud.url}/api/agents${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const page = async (query: string): Promise<AgentPage> => {
    const res = await api(query);
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as AgentPage;
  };
  /** Follows nextCursor to the end; every page and its summary as answered. */
  const walk = async (query: string) => {
    const pages: AgentPage[] = [];
    let cursor: string | null = null;
    do {
      const sep = query ? '&' : '?';
      const next: AgentPage = await page(`${query}${cursor ? `${sep}cursor=${cursor}` : ''}`);
      pages.push(next);
      cursor = next.nextCursor;
    } while (cursor && pages.length < 100);
    return { pages, ids: pages.flatMap((p) => p.agents.map((a) => a.agentId)) };
  };

  it('pages through every agent exactly once, online first then by id, each page with the counts of all', async () => {
    const stored = await cloud.repos.agents.list();
    expect(stored).toHaveLength(SEEDED + 2);
    const online = stored.filter((a) => a.status === 'online').length;
    const summary = { online, offline: stored.length - online, total: stored.length };

    const { pages, ids } = await walk('?limit=17');
    expect(ids).toEqual(listingOrder(stored));
    expect(pages).toHaveLength(Math.ceil(stored.length / 17));
    for (const p of pages) {
      expect(p.limit).toBe(17);
      expect(p.agents.length).toBeLessThanOrEqual(17);
      expect(p.summary).toEqual(summary);
    }
    expect(pages.at(-1)?.nextCursor).toBeNull();

    const first = await page('');
    expect(first).toMatchObject({ limit: 100, nextCursor: expect.any(String), summary });
    expect(first.agents.map((a) => a.agentId)).toEqual(ids.slice(0, 100));
    const everything = await page('?limit=500');
    expect(everything.agents.map((a) => a.agentId)).toEqual(ids);
    expect(everything.nextCursor).toBeNull();
  });

  it('shows the live state of the connected agent and the waiting task of the one that never connected', async () => {
    const [agent] = (await page('?q=live-agent')).agents;
    expect(agent).toMatchObject({
      agentId: 'live-agent',
      online: true,
      circuit: 'closed',
      overloaded: false,
      hostname: 'test-host',
      version: '0.1.0',
      connectedAt: expect.any(Number),
      maxConcurrentTasks: 3,
      offlineQueueDepth: 0,
    });
    const [ghost] = (await page('?q=ghost&status=offline')).agents;
    expect(ghost).toMatchObject({
      agentId: 'ghost-agent',
      online: false,
      hostname: null,
      lastSeenAt: null,
      connectedAt: null,
      offlineQueueDepth: 1,
    });
  });

  it('filters by status and by a piece of the id or host name, in any case, paging the same way', async () => {
    const stored = await cloud.repos.agents.list();
    const only = (keep: (a: AgentRecord) => boolean) => listingOrder(stored.filter(keep));
    const online = await walk('?status=online&limit=20');
    expect(online.ids).toEqual(only((a) => a.status === 'online'));
    expect(online.pages[0]?.summary.online).toBe(online.ids.length);
    expect((await walk('?status=offline&limit=50')).ids).toEqual(only((a) => a.status === 'offline'));
    expect((await walk('?q=RACK-3&limit=9')).ids).toEqual(only((a) => a.hostname === 'rack-3.lab'));
    expect((await walk('?q=agent-1&status=online&limit=5')).ids).toEqual(
      only((a) => a.status === 'online' && a.id.startsWith('agent-1')),
    );
    expect((await page('?q=nothing-like-this')).agents).toEqual([]);
  });

  it('refuses a cursor it did not hand out, and a bad query, with 400 and the reason', async () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    const badCursors = [
      'not-a-cursor',
      b64('7:agent-001'),
      b64(`${Date.now()}:task_x`),
      b64('0:'),
      'x'.repeat(401),
    ];
    for (const cursor of badCursors) {
      const res = await api(`?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      const body = (await res.json()) as ErrorBody;
      expect(body.error.code).toBe('INVALID_QUERY');
      expect(body.error.message).toMatch(/^cursor: /);
    }
    for (const [query, field] of [
      ['?limit=0', 'limit'],
      ['?limit=501', 'limit'],
      ['?limit=many', 'limit'],
      ['?status=busy', 'status'],
      [`?q=${'x'.repeat(201)}`, 'q'],
    ] as const) {
      const res = await api(query);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as ErrorBody).error.message).toMatch(new RegExp(`^${field}: `));
    }
    // A cursor that was handed out keeps working.
    const { nextCursor } = await page('?limit=3');
    expect((await page(`?limit=3&cursor=${nextCursor}`)).agents).toHaveLength(3);
  });
});
