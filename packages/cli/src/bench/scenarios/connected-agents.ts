import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadCloudConfig, startCloud } from '@bematic/cloud';
import { AGENT_WS_PATH } from '@bematic/protocol';
import { memory, now, silentLogger, withTimeout } from '../harness.js';
import { round } from '../stats.js';
import type { BenchRow, Scenario } from '../types.js';
import type { SwarmAgent, SwarmCommand, SwarmReply } from './swarm-client.js';

const HEARTBEAT_MS = 1000;
const HOLD_INTERVALS = 3;

/** Talks to the swarm child: one request, one reply of the expected type. */
class Swarm {
  private readonly child: ChildProcess;
  readonly exited: Promise<void>;

  constructor() {
    this.child = fork(new URL('./swarm-client.js', import.meta.url), [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  request<T extends SwarmReply['type']>(
    cmd: SwarmCommand,
    expect: T,
    timeoutMs: number,
  ): Promise<Extract<SwarmReply, { type: T }>> {
    const answer = new Promise<Extract<SwarmReply, { type: T }>>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        if ((m as { type?: unknown }).type !== expect) return;
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        resolve(m as Extract<SwarmReply, { type: T }>);
      };
      const onExit = (code: number | null) => {
        this.child.off('message', onMessage);
        reject(new Error(`swarm process exited (${code}) before answering ${cmd.type}`));
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
    });
    this.child.send(cmd);
    return withTimeout(answer, timeoutMs, `swarm ${cmd.type}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.request({ type: 'stop' }, 'stopped', 10_000).catch(() => this.child.kill());
    await withTimeout(this.exited, 10_000, 'swarm exit').catch(() => this.child.kill('SIGKILL'));
  }
}

/**
 * How many agents one cloud process holds with heartbeats on, and what each
 * costs: raw authenticated protocol clients (in a child process) answer every
 * HEARTBEAT_PING; the cloud pings each every second and marks an agent offline
 * after two silent intervals. Memory is measured in the cloud's process after
 * a full GC, before and after each step.
 */
export const connectedAgents: Scenario = {
  name: 'agents',
  title: `Connected agents with ${HEARTBEAT_MS} ms heartbeats, memory per agent`,
  async run(ctx) {
    const steps = ctx.quick ? [200] : [500, 1000];
    const total = steps.at(-1) as number;
    const root = await mkdtemp(path.join(tmpdir(), 'bematic-bench-agents-'));
    const cloud = await startCloud({
      config: loadCloudConfig({
        DATABASE_URL: `sqlite:${path.join(root, 'bematic.db')}`,
        PORT: '0',
        BEMATIC_LOG_LEVEL: 'silent',
        BEMATIC_HEARTBEAT_MS: String(HEARTBEAT_MS),
      }),
      logger: silentLogger(),
    });
    const swarm = new Swarm();
    const heartbeats = new Map<string, number>();
    let offline = 0;
    const offs = [
      cloud.events.on('agent.heartbeat', ({ agentId }) => {
        heartbeats.set(agentId, (heartbeats.get(agentId) ?? 0) + 1);
      }),
      cloud.events.on('agent.offline', () => void offline++),
    ];
    try {
      const agents: SwarmAgent[] = [];
      for (let i = 0; i < total; i++) {
        const agentId = `swarm-${i}`;
        const { key } = await cloud.gateway.apiKeys.create(agentId, { label: 'bench', actor: 'bench' });
        agents.push({ agentId, apiKey: key });
      }
      const url = `${cloud.agentUrl}${AGENT_WS_PATH}`;
      const base = memory();
      const results: Array<Record<string, number>> = [];
      let connected = 0;
      for (const step of steps) {
        const batch = agents.slice(connected, step);
        const reply = await swarm.request(
          { type: 'connect', url, agents: batch, concurrency: 50 },
          'connected',
          120_000,
        );
        if (reply.failed > 0)
          ctx.log(`  ${reply.failed} agents failed to connect: ${reply.errors.join('; ')}`);
        connected = step;

        // Hold: every agent should answer every ping and none should drop.
        heartbeats.clear();
        offline = 0;
        const cpu0 = process.cpuUsage();
        const t0 = now();
        await new Promise((r) => setTimeout(r, HOLD_INTERVALS * HEARTBEAT_MS + HEARTBEAT_MS / 2));
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
        const stats = await swarm.request({ type: 'stats' }, 'stats', 10_000);
        results.push({
          agents: step,
          connectedOk: reply.ok,
          connectMs: round(reply.ms),
          online,
          answeringEveryInterval: steady,
          wentOffline: offline,
          clientSocketsOpen: stats.open,
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
        });
        ctx.log(`  ${step} agents: ${online} online, ${steady} answering every interval`);
      }

      const rows: BenchRow[] = [];
      for (const r of results) {
        rows.push(
          {
            metric: `agents online of ${r.agents}`,
            value: r.online as number,
            unit: 'agents',
            notes: `${r.answeringEveryInterval} answered every ping over ${HOLD_INTERVALS} intervals; ${r.wentOffline} went offline`,
          },
          {
            metric: '  memory per agent (heap + buffers)',
            value: r.liveBytesPerAgentKb as number,
            unit: 'KiB',
            notes: `after full GC: heap +${r.heapDeltaMb} MiB, buffers +${r.externalDeltaMb} MiB; RSS +${r.rssDeltaMb} MiB (${r.rssPerAgentKb} KiB/agent, coarse: V8 reuses pages)`,
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
            notes: `${r.connectedOk} new connections, 50 at a time`,
          },
        );
      }
      return { rows, details: { heartbeatMs: HEARTBEAT_MS, holdIntervals: HOLD_INTERVALS, steps: results } };
    } finally {
      for (const off of offs) off();
      await swarm.stop();
      await cloud.close();
      await rm(root, { recursive: true, force: true });
    }
  },
};
