import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, loadAgentConfig, SleepExecutor } from '@bematic/agent';
import {
  createDatabase,
  createGateway,
  createRepositories,
  type Database,
  type Gateway,
  migrateToLatest,
  PostgresAgentRelay,
  type Project,
  type Repositories,
  TaskEvents,
  trackPresence,
} from '@bematic/cloud';
import { backgroundClock, type TaskSubmit } from '@bematic/protocol';
import { postgresDatabase, postgresServerUrl } from '../databases.js';
import { now, silentLogger, TimingExecutor } from '../harness.js';
import { round, summarize } from '../stats.js';
import type { BenchRow, Scenario } from '../types.js';

/** One cloud instance in this process: its own pool, relay, presence and WebSocket server on one database. */
interface Instance {
  id: string;
  port: number;
  repos: Repositories;
  events: TaskEvents;
  gateway: Gateway;
  /** Dies the way kill -9 does as far as others can tell: database sessions and sockets cut, nothing said. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

async function startInstance(url: string, id: string, port = 0): Promise<Instance> {
  const database: Database = await createDatabase(url);
  const repos = createRepositories(database.db);
  const events = new TaskEvents();
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const logger = silentLogger();
  const relay = new PostgresAgentRelay({
    connectionString: url,
    instanceId: id,
    clock: backgroundClock,
    logger,
  });
  const gateway = createGateway({
    server,
    repos,
    events,
    logger,
    instanceId: id,
    relay,
    config: { reconcileOnStartup: false },
  });
  const stopPresence = trackPresence({
    events,
    agents: repos.agents,
    instanceId: id,
    clock: backgroundClock,
    logger,
    health: (agentId) => gateway.manager.presenceOf(agentId),
  });
  await gateway.ready;
  const closeServer = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return {
    id,
    port: (server.address() as AddressInfo).port,
    repos,
    events,
    gateway,
    kill: async () => {
      stopPresence();
      await relay.close();
      await database.close();
      for (const agentId of gateway.manager.connectedAgentIds())
        gateway.manager.disconnect(agentId, 'killed');
      await closeServer();
      await gateway.close().catch(() => undefined);
    },
    stop: async () => {
      stopPresence();
      await gateway.close();
      await closeServer();
      await database.close();
    },
  };
}

/** Seeded, so a run's kill points can be replayed. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Three cloud instances on one PostgreSQL database and one real agent given all three URLs: dispatch to an
 * agent whose socket is on another instance (outbox row + NOTIFY + SKIP LOCKED claim) against one on the
 * same instance; failover time when the agent's instance dies mid-task; and seeded kill rounds counting
 * tasks lost or run twice.
 */
export const crossInstance: Scenario = {
  name: 'cross-instance',
  title: 'Several instances on one PostgreSQL: cross-instance dispatch, failover, kill rounds',
  async run(ctx) {
    const serverUrl = postgresServerUrl();
    if (!serverUrl) {
      ctx.log('  cross-instance: skipped (set BEMATIC_BENCH_POSTGRES_URL or BEMATIC_TEST_POSTGRES_URL)');
      return { rows: [], details: { skipped: 'no PostgreSQL server' } };
    }
    const count = ctx.quick ? 15 : 200;
    const rounds = ctx.quick ? 2 : 20;
    const db = await postgresDatabase(serverUrl);
    const dir = await mkdtemp(path.join(tmpdir(), 'bematic-bench-xi-'));
    // Reads task state whichever instance is down.
    const reader = await createDatabase(db.url);
    await migrateToLatest(reader);
    const readRepos = createRepositories(reader.db);

    const instances: Instance[] = [];
    for (const id of ['a', 'b', 'c']) instances.push(await startInstance(db.url, id));
    const agentId = 'bench-agent';
    const key = (await instances[0]!.gateway.apiKeys.create(agentId)).key;
    const project: Project = await instances[0]!.repos.projects.create({
      name: 'bench',
      channelId: 'C-bench',
      agentId,
      fallbackAgentIds: [],
      localPath: dir,
      defaultModel: null,
      maxBudgetUsd: null,
    });

    const started = new Map<string, number>();
    let arrived: ((task: TaskSubmit, at: number) => void) | null = null;
    const executor = new TimingExecutor(new SleepExecutor({ durationMs: 0 }), (task, at) => {
      started.set(task.taskId, (started.get(task.taskId) ?? 0) + 1);
      arrived?.(task, at);
    });
    const agent = new Agent({
      config: loadAgentConfig(
        {
          BEMATIC_CLOUD_URL: instances.map((i) => `http://127.0.0.1:${i.port}`).join(','),
          BEMATIC_AGENT_ID: agentId,
          BEMATIC_AGENT_KEY: key,
          BEMATIC_AGENT_ROOTS: dir,
          BEMATIC_WORKTREE_DIR: path.join(dir, 'worktrees'),
          BEMATIC_AGENT_STATE_DIR: path.join(dir, 'state'),
          BEMATIC_CPU_THRESHOLD: 'off',
          BEMATIC_MEMORY_THRESHOLD: 'off',
          MAX_CONCURRENT_TASKS: '10',
        },
        dir,
      ),
      executor,
      logger: silentLogger(),
    });
    let authenticatedAt = 0;
    agent.on('authenticated', () => {
      authenticatedAt = now();
    });

    /** Which live instance holds the agent now, per its own manager. */
    const holder = () => instances.find((i) => i.gateway.manager.isConnected(agentId));
    const waitFor = async (cond: () => boolean | Promise<boolean>, ms: number, what: string) => {
      const deadline = now() + ms;
      while (!(await cond())) {
        if (now() > deadline) throw new Error(`cross-instance: timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    let seq = 0;
    const create = (on: Instance, sleepMs: number) => {
      seq += 1;
      const id = `task_xi_${seq}`;
      return on.gateway.lifecycle.create(
        {
          id,
          projectId: project.id,
          agentId,
          botName: 'coder',
          command: 'fix',
          prompt: `bench ${seq} [sleep:${sleepMs}]`,
          model: 'claude-sonnet-4-5',
          priority: 'normal',
          userId: 'U-bench',
          channelId: project.channelId,
          submission: {
            taskId: id,
            projectId: project.id,
            localPath: dir,
            botName: 'coder',
            command: 'fix',
            prompt: `bench ${seq} [sleep:${sleepMs}]`,
            systemPrompt: 'bench',
            model: 'claude-sonnet-4-5',
            allowedTools: ['Read'],
            priority: 'normal',
          },
        },
        { actor: 'bench', details: {} },
      );
    };
    const statusOf = async (taskId: string) => (await readRepos.tasks.findById(taskId))?.status;
    const completions = new Map<string, number>();
    const countCompletions = (i: Instance) =>
      i.events.on(
        'task.completed',
        ({ task }) => void completions.set(task.id, (completions.get(task.id) ?? 0) + 1),
      );
    const offs = instances.map(countCompletions);

    const rows: BenchRow[] = [];
    const details: Record<string, unknown> = { count, rounds };
    try {
      agent.start();
      await waitFor(() => holder() !== undefined, 10_000, 'the agent to connect');

      // Dispatch latency: dispatch() on an instance → TASK_SUBMIT at the agent's executor.
      const latency = async (cross: boolean) => {
        const samples: number[] = [];
        for (let i = 0; i < count + 5; i++) {
          const here = holder();
          if (!here) throw new Error('agent not connected');
          const on = cross ? instances.find((x) => x !== here)! : here;
          const task = await create(on, 0);
          const reached = new Promise<number>((resolve) => {
            arrived = (t, at) => {
              if (t.taskId === task.id) resolve(at);
            };
          });
          const t0 = now();
          await on.gateway.dispatcher.dispatch(task);
          const at = await reached;
          if (i >= 5) samples.push(at - t0);
          await waitFor(async () => (await statusOf(task.id)) === 'completed', 10_000, 'a latency task');
        }
        return summarize(samples);
      };
      const same = await latency(false);
      const cross = await latency(true);
      ctx.log(`  cross-instance: dispatch same p50 ${round(same.p50)} ms, cross p50 ${round(cross.p50)} ms`);
      details.sameInstance = same;
      details.crossInstance = cross;
      rows.push(
        { metric: 'dispatch, same instance p50', value: round(same.p50), unit: 'ms', notes: `n=${count}` },
        { metric: 'dispatch, same instance p99', value: round(same.p99), unit: 'ms', notes: `n=${count}` },
        {
          metric: 'dispatch, cross-instance p50',
          value: round(cross.p50),
          unit: 'ms',
          notes: `same instance ${round(same.p50)} ms`,
        },
        {
          metric: 'dispatch, cross-instance p99',
          value: round(cross.p99),
          unit: 'ms',
          notes: `same instance ${round(same.p99)} ms; target < 20 ms`,
        },
      );

      // Failover and kill rounds: tasks submitted on various instances, the agent's instance killed mid-task.
      const random = seeded(20261203);
      const failovers: Array<{ authMs: number; firstResultMs: number }> = [];
      let lost = 0;
      let twice = 0;
      let submitted = 0;
      for (let r = 0; r < rounds; r++) {
        const victim = holder();
        if (!victim) throw new Error('agent not connected before a kill round');
        const tasks: string[] = [];
        for (let k = 0; k < 5; k++) {
          const on = instances[Math.floor(random() * instances.length)]!;
          const task = await create(on, 100 + Math.floor(random() * 200));
          await on.gateway.dispatcher.dispatch(task);
          tasks.push(task.id);
        }
        submitted += tasks.length;
        await waitFor(() => tasks.some((id) => started.has(id)), 10_000, 'a task to start');
        await new Promise((r2) => setTimeout(r2, Math.floor(random() * 80)));
        const killedAt = now();
        const authBefore = authenticatedAt;
        const index = instances.indexOf(victim);
        await victim.kill();
        await waitFor(() => authenticatedAt !== authBefore, 30_000, 'the agent to re-authenticate');
        const authMs = authenticatedAt - killedAt;
        const done = new Set([...completions.keys()]);
        await waitFor(
          () => tasks.some((id) => completions.has(id) && !done.has(id)) || tasks.every((id) => done.has(id)),
          30_000,
          'a first result after the kill',
        );
        failovers.push({ authMs, firstResultMs: now() - killedAt });
        // The instance comes back (same id and port): the agent's URL list stays right.
        const back = await startInstance(db.url, victim.id, victim.port);
        instances[index] = back;
        offs.push(countCompletions(back));
        try {
          await waitFor(
            async () => {
              for (const id of tasks) if ((await statusOf(id)) !== 'completed') return false;
              return true;
            },
            30_000,
            'every task of the round to complete',
          );
        } catch {
          // Counted below as lost.
        }
        for (const id of tasks) {
          if ((await statusOf(id)) !== 'completed') lost += 1;
          if ((started.get(id) ?? 0) > 1 || (completions.get(id) ?? 0) > 1) twice += 1;
        }
        ctx.log(`  cross-instance: kill round ${r + 1}/${rounds} (killed ${victim.id})`);
      }
      const auth = summarize(failovers.map((f) => f.authMs));
      const firstResult = summarize(failovers.map((f) => f.firstResultMs));
      details.failovers = failovers;
      details.kill = { submitted, lost, twice };
      rows.push(
        {
          metric: 'failover: kill → agent re-authenticated p50',
          value: round(auth.p50),
          unit: 'ms',
          notes: `n=${rounds}`,
        },
        {
          metric: 'failover: kill → first result committed p50',
          value: round(firstResult.p50),
          unit: 'ms',
          notes: 'target < 5 s',
        },
        {
          metric: 'failover: kill → first result committed max',
          value: round(firstResult.max),
          unit: 'ms',
          notes: `n=${rounds}`,
        },
        {
          metric: 'kill rounds: tasks lost',
          value: lost,
          unit: 'tasks',
          notes: `${submitted} tasks, ${rounds} seeded kills; target 0`,
        },
        { metric: 'kill rounds: tasks run twice', value: twice, unit: 'tasks', notes: 'target 0' },
      );
    } finally {
      for (const off of offs) off();
      arrived = null;
      await agent.stop();
      for (const i of instances) await i.stop().catch(() => undefined);
      await reader.close();
      await db.drop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
    return { rows, details };
  },
};
