import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type AgentPage, type Cloud, loadCloudConfig, startCloud } from '@bematic/cloud';
import { AGENT_WS_PATH } from '@bematic/protocol';
import { ClientProcess, rssOf } from '../client-process.js';
import { apiGet, apiJson, mapLimit, memory, now, silentLogger } from '../harness.js';
import { round, summarize } from '../stats.js';
import type { BenchRow, Scenario } from '../types.js';
import type { SwarmAgent, SwarmCommand, SwarmReply } from './swarm-client.js';

const HOLD_INTERVALS = 3;

type Swarm = ClientProcess<SwarmCommand, SwarmReply>;

/** What the machine allows one process: each agent is one open file in the cloud. */
async function openFileLimit(): Promise<number | undefined> {
  try {
    const limits = await readFile('/proc/self/limits', 'utf8');
    const soft = /Max open files\s+(\d+)/.exec(limits)?.[1];
    return soft ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/** The issue's target: agents per cloud process, RSS per agent, /api/agents. */
const TARGET_AGENTS = 50_000;
const TARGET_RSS_KIB = 16;
const TARGET_API_MS = 50;

/** The dashboard's first call (its page size), and where the deep page starts: 90 % into the listing. */
const FIRST_PAGE = '/api/agents?limit=50';
const DEEP_FRACTION = 0.9;
const API_WINDOW_INTERVALS = 2;

/** A cursor about `fraction` into the listing, reached the way a client would: page after page. */
async function cursorAt(cloud: Cloud, fraction: number, total: number): Promise<string | null> {
  let cursor: string | null = null;
  for (let passed = 0; passed < Math.floor(total * fraction); ) {
    const limit = Math.min(500, Math.floor(total * fraction) - passed);
    const page: AgentPage = await apiJson<AgentPage>(
      cloud,
      `/api/agents?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    passed += page.agents.length;
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return cursor;
}

/**
 * Calls spread out over `API_WINDOW_INTERVALS` heartbeat intervals, so they meet whatever the cloud does
 * periodically (heartbeats, presence writes, the outbox safety sweep, GC) as a person's polls would; the cache
 * flushed before each. Their times, and the longest event-loop delay meanwhile.
 */
async function timeCalls(cloud: Cloud, apiPath: string, repeats: number, heartbeatMs: number) {
  const gapMs = (API_WINDOW_INTERVALS * heartbeatMs) / repeats;
  const times: number[] = [];
  let status = 0;
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  for (let i = 0; i < repeats; i++) {
    cloud.cache.flush();
    const t0 = now();
    status = await apiGet(cloud, apiPath);
    times.push(now() - t0);
    await new Promise((r) => setTimeout(r, Math.max(0, gapMs - (now() - t0))));
  }
  loop.disable();
  return { ...summarize(times), status, loopMaxMs: loop.max / 1e6 };
}

/**
 * How many agents one cloud process holds with heartbeats on, and what each
 * costs: raw authenticated protocol clients (in several child processes, each
 * from its own loopback address) answer every HEARTBEAT_PING; the cloud marks
 * an agent offline after two silent intervals. Memory (RSS and heap) is
 * measured in the cloud's process after a full GC, before and after each step,
 * and `/api/agents` is timed at each count: the dashboard's first page, and a
 * page deep in the listing.
 */
export const connectedAgents: Scenario = {
  name: 'agents',
  title: 'Connected agents with heartbeats: RSS and heap per agent, /api/agents',
  async run(ctx) {
    const steps = ctx.quick ? [200] : [1000, 10_000];
    const heartbeatMs = ctx.quick ? 1000 : 5000;
    const processes = ctx.quick ? 2 : 4;
    const apiRepeats = ctx.quick ? 20 : 200;
    const total = steps.at(-1) as number;
    const fileLimit = await openFileLimit();
    const root = await mkdtemp(path.join(tmpdir(), 'bematic-bench-agents-'));
    const cloud = await startCloud({
      config: loadCloudConfig({
        DATABASE_URL: `sqlite:${path.join(root, 'bematic.db')}`,
        PORT: '0',
        BEMATIC_LOG_LEVEL: 'silent',
        BEMATIC_HEARTBEAT_MS: String(heartbeatMs),
        BEMATIC_RATE_LIMIT: '10000000',
      }),
      logger: silentLogger(),
    });
    const swarms: Swarm[] = Array.from(
      { length: processes },
      () => new ClientProcess(new URL('./swarm-client.js', import.meta.url)),
    );
    const heartbeats = new Map<string, number>();
    let offline = 0;
    const offs = [
      cloud.events.on('agent.heartbeat', ({ agentId }) => {
        heartbeats.set(agentId, (heartbeats.get(agentId) ?? 0) + 1);
      }),
      cloud.events.on('agent.offline', () => void offline++),
    ];
    try {
      const k0 = now();
      const agents: SwarmAgent[] = await mapLimit(
        Array.from({ length: total }, (_, i) => `swarm-${i}`),
        8,
        async (agentId) => {
          const { key } = await cloud.gateway.apiKeys.create(agentId, { label: 'bench', actor: 'bench' });
          return { agentId, apiKey: key };
        },
      );
      ctx.log(`  ${total} API keys in ${round((now() - k0) / 1000)} s`);
      const url = `${cloud.agentUrl}${AGENT_WS_PATH}`;
      await apiGet(cloud, FIRST_PAGE);
      const base = memory();
      const results: Array<Record<string, number>> = [];
      let connected = 0;
      for (const step of steps) {
        const batch = agents.slice(connected, step);
        const per = Math.ceil(batch.length / processes);
        const replies = await Promise.all(
          swarms.map((swarm, i) =>
            swarm.request(
              {
                type: 'connect',
                url,
                agents: batch.slice(i * per, (i + 1) * per),
                concurrency: 25,
              },
              'connected',
              600_000,
            ),
          ),
        );
        const ok = replies.reduce((a, r) => a + r.ok, 0);
        const failed = replies.reduce((a, r) => a + r.failed, 0);
        const connectMs = Math.max(...replies.map((r) => r.ms));
        if (failed > 0)
          ctx.log(`  ${failed} agents failed to connect: ${replies.flatMap((r) => r.errors).join('; ')}`);
        connected = step;

        // Hold: every agent should answer every ping and none should drop.
        heartbeats.clear();
        offline = 0;
        const cpu0 = process.cpuUsage();
        const t0 = now();
        await new Promise((r) => setTimeout(r, HOLD_INTERVALS * heartbeatMs + heartbeatMs / 2));
        const cpu = process.cpuUsage(cpu0);
        const heldMs = now() - t0;
        const online = agents
          .slice(0, step)
          .filter((a) => cloud.gateway.manager.isConnected(a.agentId)).length;
        const steady = agents
          .slice(0, step)
          .filter((a) => (heartbeats.get(a.agentId) ?? 0) >= HOLD_INTERVALS - 1).length;
        const beats = [...heartbeats.values()].reduce((a, b) => a + b, 0);
        const mem = memory();
        const stats = await Promise.all(swarms.map((s) => s.request({ type: 'stats' }, 'stats', 30_000)));
        const clientRss = await Promise.all(swarms.map((s) => rssOf(s.pid)));
        // The dashboard's agents panel with all of them connected, heartbeats flowing: its first page, and
        // one deep in the listing (a keyset page costs the same wherever it starts).
        const first = await apiJson<AgentPage>(cloud, FIRST_PAGE);
        const deepCursor = await cursorAt(cloud, DEEP_FRACTION, first.summary.total);
        const deepPath = `${FIRST_PAGE}${deepCursor ? `&cursor=${deepCursor}` : ''}`;
        const api = await timeCalls(cloud, FIRST_PAGE, apiRepeats, heartbeatMs);
        const deep = await timeCalls(cloud, deepPath, apiRepeats, heartbeatMs);
        results.push({
          agents: step,
          connectedOk: ok,
          connectMs: round(connectMs),
          online,
          answeringEveryInterval: steady,
          wentOffline: offline,
          clientSocketsOpen: stats.reduce((a, s) => a + s.open, 0),
          heartbeatsPerSec: round((beats / heldMs) * 1000),
          cpuPercentOfOneCore: round(((cpu.user + cpu.system) / 1000 / heldMs) * 100),
          rssDeltaMb: round((mem.rss - base.rss) / 2 ** 20),
          heapDeltaMb: round((mem.heapUsed - base.heapUsed) / 2 ** 20),
          rssPerAgentKb: round((mem.rss - base.rss) / step / 1024),
          heapPerAgentKb: round((mem.heapUsed - base.heapUsed) / step / 1024),
          externalDeltaMb: round((mem.external - base.external) / 2 ** 20),
          liveBytesPerAgentKb: round(
            (mem.heapUsed + mem.external - base.heapUsed - base.external) / step / 1024,
          ),
          clientRssPerAgentKb: round(clientRss.reduce((a, b) => a + b, 0) / step / 1024),
          apiAgentsP50Ms: round(api.p50),
          apiAgentsP99Ms: round(api.p99),
          apiAgentsStatus: api.status,
          apiAgentsLoopMaxMs: round(api.loopMaxMs),
          apiAgentsListed: first.summary.total,
          apiAgentsOnline: first.summary.online,
          apiAgentsDeepP50Ms: round(deep.p50),
          apiAgentsDeepP99Ms: round(deep.p99),
          apiAgentsDeepStatus: deep.status,
          apiAgentsDeepLoopMaxMs: round(deep.loopMaxMs),
          apiAgentsDeepFound: deepCursor ? 1 : 0,
        });
        ctx.log(
          `  ${step} agents: ${online} online, ${steady} answering every interval, /api/agents first page p99 ${round(api.p99)} ms, deep page p99 ${round(deep.p99)} ms`,
        );
      }

      const rows: BenchRow[] = [];
      for (const r of results) {
        rows.push(
          {
            metric: `agents online of ${r.agents}`,
            value: r.online as number,
            unit: 'agents',
            notes: `${processes} client processes; ${r.answeringEveryInterval} answered every ${heartbeatMs} ms ping over ${HOLD_INTERVALS} intervals; ${r.wentOffline} went offline`,
          },
          {
            metric: '  cloud RSS per agent',
            value: r.rssPerAgentKb as number,
            unit: 'KiB',
            target: {
              text: `< ${TARGET_RSS_KIB} KiB, at ≥ 10,000 agents`,
              met: (r.agents as number) >= 10_000 && (r.rssPerAgentKb as number) < TARGET_RSS_KIB,
            },
            notes: `target at ${TARGET_AGENTS.toLocaleString('en-US')}; RSS +${r.rssDeltaMb} MiB after full GC (V8 and malloc keep pages, so coarse at small counts)`,
          },
          {
            metric: '  cloud heap + buffers per agent',
            value: r.liveBytesPerAgentKb as number,
            unit: 'KiB',
            notes: `heap +${r.heapDeltaMb} MiB, buffers +${r.externalDeltaMb} MiB; client side ${r.clientRssPerAgentKb} KiB RSS per agent`,
          },
          {
            metric: '  /api/agents first page p99',
            value: r.apiAgentsP99Ms as number,
            unit: 'ms',
            target: {
              text: `< ${TARGET_API_MS} ms, at ≥ 10,000 agents`,
              met: (r.agents as number) >= 10_000 && (r.apiAgentsP99Ms as number) < TARGET_API_MS,
            },
            notes: `${FIRST_PAGE}, the dashboard's call: p50 ${r.apiAgentsP50Ms} ms, ${apiRepeats} calls over ${API_WINDOW_INTERVALS} heartbeat intervals, cache flushed, HTTP ${r.apiAgentsStatus}; summary says ${r.apiAgentsOnline} of ${r.apiAgentsListed} online; longest event-loop delay meanwhile ${r.apiAgentsLoopMaxMs} ms`,
          },
          {
            metric: '  /api/agents deep page p99',
            value: r.apiAgentsDeepP99Ms as number,
            unit: 'ms',
            target: {
              text: `< ${TARGET_API_MS} ms, at ≥ 10,000 agents`,
              met:
                (r.agents as number) >= 10_000 &&
                r.apiAgentsDeepFound === 1 &&
                (r.apiAgentsDeepP99Ms as number) < TARGET_API_MS,
            },
            notes: `the page ${Math.round(DEEP_FRACTION * 100)} % into the listing (its cursor reached page by page): p50 ${r.apiAgentsDeepP50Ms} ms, ${apiRepeats} calls over ${API_WINDOW_INTERVALS} heartbeat intervals, cache flushed, HTTP ${r.apiAgentsDeepStatus}; longest event-loop delay meanwhile ${r.apiAgentsDeepLoopMaxMs} ms`,
          },
          {
            metric: '  cloud CPU holding them',
            value: r.cpuPercentOfOneCore as number,
            unit: '% core',
            notes: `${r.heartbeatsPerSec} heartbeats/s`,
          },
          {
            metric: '  connect + authenticate',
            value: round(((r.connectedOk as number) / (r.connectMs as number)) * 1000),
            unit: 'agents/s',
            notes: `${r.connectedOk} new connections, ${processes} × 25 at a time`,
          },
        );
      }
      rows.push({
        metric: `agents per process, limit here`,
        value: fileLimit ?? Number.NaN,
        unit: 'open files',
        target: {
          text: `${TARGET_AGENTS.toLocaleString('en-US')} agents in one process`,
          met: total >= TARGET_AGENTS,
        },
        notes: `each agent is one socket in the cloud process; ${fileLimit !== undefined && fileLimit < TARGET_AGENTS ? `the ${TARGET_AGENTS.toLocaleString('en-US')} target cannot be run on this machine (RLIMIT_NOFILE ${fileLimit}, hard limit)` : `room for the ${TARGET_AGENTS.toLocaleString('en-US')} target`}; measured up to ${total.toLocaleString('en-US')}`,
      });
      return {
        rows,
        details: {
          heartbeatMs,
          holdIntervals: HOLD_INTERVALS,
          processes,
          openFileLimit: fileLimit,
          steps: results,
        },
      };
    } finally {
      for (const off of offs) off();
      await Promise.all(swarms.map((s) => s.stop({ type: 'stop' })));
      await cloud.close();
      await rm(root, { recursive: true, force: true });
    }
  },
};
