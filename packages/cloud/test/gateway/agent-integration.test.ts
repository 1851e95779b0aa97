import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Agent,
  DEFAULT_CPU_WINDOW_MS,
  type Executor,
  ResourceMonitor,
  type ResourceSample,
  SleepExecutor,
} from '@bematic/agent';
import { isTerminalStatus, systemClock } from '@bematic/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualExecutor } from '../../../agent/test/support/manual-executor.js';
import type { Project } from '../../src/db/repositories/types.js';
import { type CloudHarness, removeDir, seedProject, seedTask, startCloud } from './harness.js';

/** Deterministic pseudo-random numbers (mulberry32), so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TERMINAL_EVENTS = ['task.completed', 'task.failed', 'task.cancelled'] as const;

function terminalEventsByTask(cloud: CloudHarness): Map<string, string[]> {
  const byTask = new Map<string, string[]>();
  for (const name of TERMINAL_EVENTS) {
    for (const e of cloud.log.of(name)) byTask.set(e.task.id, [...(byTask.get(e.task.id) ?? []), name]);
  }
  return byTask;
}

describe('gateway with the real agent', () => {
  const cleanups: Array<() => Promise<void>> = [];
  const workDir = () => mkdtempSync(path.join(tmpdir(), 'bematic-checkout-'));

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function boot(opts: { dir?: string; port?: number } = {}): Promise<CloudHarness> {
    const cloud = await startCloud({
      ...opts,
      config: { heartbeatIntervalMs: 200, reconnectGraceMs: 60_000 },
    });
    return cloud;
  }

  function startAgent(
    cloudUrl: string,
    agentId: string,
    key: string,
    roots: string[],
    random: () => number,
    durationMs = 20,
    executor: Executor = new SleepExecutor({ durationMs }),
  ): Agent {
    const agent = new Agent({
      config: {
        cloudUrls: [cloudUrl],
        agentId,
        agentKey: key,
        maxConcurrentTasks: 4,
        roots,
        cpuThreshold: 101,
        memoryThreshold: 101,
        reconnectMaxMs: 200,
        stateDir: undefined,
        worktreeDir: `${roots[0]}-worktrees`,
        branchPrefix: 'bematic/',
        projectConcurrency: 4,
        githubApiUrl: 'https://api.github.com',
        githubToken: undefined,
      },
      executor,
      reconnectBaseMs: 10,
      random,
      hostname: `${agentId}-host`,
    });
    agent.start();
    cleanups.push(() => agent.stop({ graceful: false }));
    return agent;
  }

  it("a real agent's CPU gate refuses a task, and the cloud resends it as soon as the agent reports it cleared", async () => {
    const cloud = await boot();
    cleanups.push(async () => {
      await cloud.stop();
      removeDir(cloud.dir);
    });
    const checkout = workDir();
    const project = await seedProject(cloud.repos, 'agent-a', [], checkout);
    const { key } = await cloud.gateway.apiKeys.create('agent-a');
    // The machine's load is injected: each sample stands for a whole CPU window, taken when the test says.
    const reading: ResourceSample = { cpuPercent: 97, memoryPercent: 30, rssMb: 50, loadAvg1m: 3 };
    let sampledAt = Date.now();
    const monitor = new ResourceMonitor({
      cpuThreshold: 90,
      memoryThreshold: 90,
      recoverySamples: 2,
      clock: { ...systemClock, now: () => sampledAt },
      sampler: () => {
        sampledAt += DEFAULT_CPU_WINDOW_MS;
        return { ...reading };
      },
      intervalMs: 3_600_000,
    });
    const agent = new Agent({
      config: {
        cloudUrls: [cloud.url],
        agentId: 'agent-a',
        agentKey: key,
        maxConcurrentTasks: 2,
        roots: [checkout],
        cpuThreshold: 90,
        memoryThreshold: 90,
        reconnectMaxMs: 200,
        stateDir: undefined,
        worktreeDir: `${checkout}-worktrees`,
        branchPrefix: 'bematic/',
        projectConcurrency: 2,
        githubApiUrl: 'https://api.github.com',
        githubToken: undefined,
      },
      executor: new SleepExecutor({ durationMs: 0 }),
      resourceMonitor: monitor,
      reconnectBaseMs: 10,
      hostname: 'busy-host',
    });
    cleanups.push(() => agent.stop({ graceful: false }));
    const authed = once(agent, 'authenticated');
    agent.start();
    await authed;
    monitor.sample();
    expect(monitor.isOverloaded()).toBe(true);

    const task = await seedTask(cloud.repos, project, { prompt: 'wait for a calm machine' });
    await cloud.gateway.dispatcher.dispatch(task);
    const queued = await cloud.log.wait('task.queued', (e) => e.task.id === task.id);
    expect(queued.task.status).toBe('queued');
    expect((await cloud.repos.tasks.findById(task.id))?.attempt).toBe(1);
    expect(cloud.log.of('task.started')).toHaveLength(0);

    // Load falls: the agent's monitor recovers, it says so, and the cloud sends the task again at once.
    reading.cpuPercent = 10;
    monitor.sample();
    monitor.sample();
    expect(monitor.isOverloaded()).toBe(false);
    const done = await cloud.log.wait('task.completed', (e) => e.task.id === task.id);
    expect(done.task).toMatchObject({ status: 'completed', attempt: 2, agentId: 'agent-a' });
    expect(terminalEventsByTask(cloud).get(task.id)).toEqual(['task.completed']);
    removeDir(checkout);
  });

  it('records the result once when the agent is disconnected mid-task and reconnects', async () => {
    const cloud = await boot();
    cleanups.push(async () => {
      await cloud.stop();
      removeDir(cloud.dir);
    });
    const checkout = workDir();
    const project = await seedProject(cloud.repos, 'agent-a', [], checkout);
    const { key } = await cloud.gateway.apiKeys.create('agent-a');
    const executor = new ManualExecutor();
    const agent = startAgent(cloud.url, 'agent-a', key, [checkout], seeded(1), 0, executor);
    await once(agent, 'authenticated');

    const task = await seedTask(cloud.repos, project, { prompt: 'fix the login bug' });
    await cloud.gateway.dispatcher.dispatch(task);
    await executor.started(task.id);
    await cloud.log.wait('task.started', (e) => e.task.id === task.id);
    expect(cloud.gateway.manager.disconnect('agent-a', 'test')).toBe(true);
    await cloud.log.wait('agent.offline');
    // The task finishes while the agent is away; its result waits in the agent's buffer.
    executor.complete(task.id);

    const done = await cloud.log.wait('task.completed', (e) => e.task.id === task.id);
    expect(done.task.status).toBe('completed');
    await agent.stop({ graceful: true });
    expect(terminalEventsByTask(cloud).get(task.id)).toEqual(['task.completed']);
    expect(await cloud.repos.audit.list({ action: 'task.completed', resourceId: task.id })).toHaveLength(1);
    expect(cloud.log.of('agent.online').length).toBeGreaterThanOrEqual(1);
    removeDir(checkout);
  });

  it('brings a task to a terminal state across a cloud restart on the same database', async () => {
    const first = await boot();
    const dir = first.dir;
    const port = first.port;
    const checkout = workDir();
    const project = await seedProject(first.repos, 'agent-a', [], checkout);
    const { key } = await first.gateway.apiKeys.create('agent-a');
    const executor = new ManualExecutor();
    const agent = startAgent(first.url, 'agent-a', key, [checkout], seeded(2), 0, executor);
    await once(agent, 'authenticated');
    const task = await seedTask(first.repos, project, { prompt: 'long job' });
    await first.gateway.dispatcher.dispatch(task);
    await first.log.wait('task.started', (e) => e.task.id === task.id);
    await first.stop();
    // Finished while no cloud is there: the result waits in the agent's buffer for the next one.
    executor.complete(task.id);

    const second = await startCloud({
      dir,
      port,
      config: { heartbeatIntervalMs: 200, reconnectGraceMs: 60_000, reconcileOnStartup: true },
    });
    cleanups.push(async () => {
      await second.stop();
      removeDir(dir);
      removeDir(checkout);
    });
    await second.gateway.ready;
    const done = await second.log.wait('task.completed', (e) => e.task.id === task.id);
    expect(done.task).toMatchObject({ status: 'completed' });
    await agent.stop({ graceful: true });
    expect(terminalEventsByTask(second).get(task.id)).toEqual(['task.completed']);
    expect(await second.repos.audit.list({ action: 'task.completed', resourceId: task.id })).toHaveLength(1);
  });

  it('200 tasks across 3 agents with random disconnects: each reaches exactly one terminal state, once', async () => {
    const random = seeded(20240601);
    const cloud = await boot();
    cleanups.push(async () => {
      await cloud.stop();
      removeDir(cloud.dir);
    });
    const checkout = workDir();
    const ids = ['agent-1', 'agent-2', 'agent-3'];
    const projects: Project[] = [];
    for (const id of ids) {
      projects.push(
        await seedProject(
          cloud.repos,
          id,
          ids.filter((x) => x !== id),
          checkout,
        ),
      );
    }
    const agents: Agent[] = [];
    for (const id of ids) {
      const { key } = await cloud.gateway.apiKeys.create(id);
      agents.push(startAgent(cloud.url, id, key, [checkout], seeded(Math.floor(random() * 1e9)), 5));
    }
    await Promise.all(agents.map((a) => once(a, 'authenticated')));

    const terminal = new Set<string>();
    for (const name of TERMINAL_EVENTS) cloud.events.on(name, (e) => void terminal.add(e.task.id));

    const taskIds: string[] = [];
    let disconnects = 0;
    for (let i = 0; i < 200; i++) {
      const project = projects[Math.floor(random() * projects.length)]!;
      const sleep = Math.floor(random() * 30);
      const task = await seedTask(cloud.repos, project, {
        prompt: `[sleep:${sleep}] task ${i}`,
        priority: (['urgent', 'high', 'normal', 'low'] as const)[Math.floor(random() * 4)]!,
      });
      taskIds.push(task.id);
      await cloud.gateway.dispatcher.dispatch(task);
      // Bounded chaos: at most 12 forced disconnects, spread over the submissions.
      if (disconnects < 12 && random() < 0.08) {
        const victim = ids[Math.floor(random() * ids.length)]!;
        if (cloud.gateway.manager.disconnect(victim, 'chaos')) disconnects += 1;
      }
    }
    expect(disconnects).toBeGreaterThan(0);
    const ended = (id: string) => (e: { task: { id: string } }) => e.task.id === id;
    await Promise.all(
      taskIds.map((id) =>
        Promise.race([
          cloud.log.wait('task.completed', ended(id)),
          cloud.log.wait('task.failed', ended(id)),
          cloud.log.wait('task.cancelled', ended(id)),
        ]),
      ),
    );
    expect(taskIds.every((id) => terminal.has(id))).toBe(true);
    await Promise.all(agents.map((a) => a.stop({ graceful: true })));

    const byTask = terminalEventsByTask(cloud);
    for (const id of taskIds) {
      expect(byTask.get(id), id).toHaveLength(1);
      const stored = await cloud.repos.tasks.findById(id);
      expect(isTerminalStatus(stored!.status)).toBe(true);
      expect(`task.${stored!.status}`).toBe(byTask.get(id)![0]);
    }
    const counts = await cloud.repos.tasks.countByStatus();
    expect(counts.completed + counts.failed + counts.cancelled).toBe(200);
    // With agents that always come back, nothing should be lost or expire.
    expect(counts.completed).toBe(200);
    expect(await cloud.repos.offlineQueue.countByAgent()).toEqual({});
    removeDir(checkout);
  });
});
