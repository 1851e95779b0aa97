import { ManualClock } from '@bematic/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CloudHarness,
  METRICS,
  RawAgent,
  removeDir,
  seedProject,
  seedTask,
  startCloud,
} from './harness.js';

const INTERVAL = 1_000;
const COOLDOWN = 5_000;

describe('gateway: heartbeat, offline detection and circuit breaker', () => {
  let cloud: CloudHarness;
  let clock: ManualClock;
  let key: string;

  beforeEach(async () => {
    clock = new ManualClock();
    cloud = await startCloud({
      clock,
      config: { heartbeatIntervalMs: INTERVAL, circuit: { cooldownMs: COOLDOWN } },
    });
    key = (await cloud.gateway.apiKeys.create('agent-a')).key;
  });
  afterEach(async () => {
    await cloud.stop();
    removeDir(cloud.dir);
  });

  it('pings every interval and records round-trip time and metrics from the PONG', async () => {
    const { agent } = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    await cloud.log.wait('agent.online');
    await clock.advance(INTERVAL);
    const ping = await agent.next('HEARTBEAT_PING');
    await clock.advance(40);
    agent.send('HEARTBEAT_PONG', { ...ping.payload, metrics: { ...METRICS, cpuPercent: 42 } });
    const beat = await cloud.log.wait('agent.heartbeat');
    expect(beat).toMatchObject({ agentId: 'agent-a', rttMs: 40, metrics: { cpuPercent: 42 } });
    const {
      agents: [snap],
    } = await cloud.gateway.directory.listAgents({ limit: 10 });
    expect(snap).toMatchObject({ lastRttMs: 40, metrics: { cpuPercent: 42 }, online: true });
    await agent.close();
  });

  it('marks a silent agent offline after 2 missed intervals, opens its circuit, half-opens after the cool-down, closes on reconnect', async () => {
    const project = await seedProject(cloud.repos, 'agent-a');
    const { agent } = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    await cloud.log.wait('agent.online');

    await clock.advance(INTERVAL); // ping 1
    await clock.advance(INTERVAL); // ping 1 unanswered: missed 1, ping 2
    expect(cloud.log.of('agent.offline')).toEqual([]);
    expect(cloud.gateway.manager.isConnected('agent-a')).toBe(true);
    await clock.advance(INTERVAL); // missed 2: offline
    const offline = await cloud.log.wait('agent.offline');
    expect(offline.reason).toContain('no heartbeat');
    await agent.closed;
    expect(cloud.log.of('circuit.changed').map((c) => `${c.from}->${c.to}`)).toEqual(['closed->open']);
    expect((await cloud.repos.agents.findById('agent-a'))?.status).toBe('offline');

    // While it is away new work waits in the queue with the circuit named as the reason.
    const task = await seedTask(cloud.repos, project);
    const r = await cloud.gateway.dispatcher.dispatch(task);
    expect(r).toMatchObject({ queued: true, sent: false });

    await clock.advance(COOLDOWN);
    expect(cloud.log.of('circuit.changed').map((c) => `${c.from}->${c.to}`)).toEqual([
      'closed->open',
      'open->half-open',
    ]);
    const back = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    await cloud.log.wait('circuit.changed', (c) => c.from === 'half-open');
    expect(cloud.log.of('circuit.changed').at(-1)).toMatchObject({ from: 'half-open', to: 'closed' });
    expect((await back.agent.next('TASK_SUBMIT')).payload.taskId).toBe(task.id);
    expect((await cloud.repos.agents.findById('agent-a'))?.status).toBe('online');
    await back.agent.close();
  });

  it('estimates the reconnection ETA from the agent’s previous absences', async () => {
    const first = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    await first.agent.close();
    const firstOffline = await cloud.log.wait('agent.offline');
    expect(firstOffline.reconnectEtaMs).toBeNull();
    await clock.advance(30_000);
    const second = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    await cloud.log.wait('agent.online', () => cloud.log.of('agent.online').length === 2);
    expect(cloud.gateway.manager.isConnected('agent-a')).toBe(true);
    await second.agent.close();
    await cloud.log.wait('agent.offline', () => cloud.log.of('agent.offline').length === 2);
    expect(cloud.log.of('agent.offline')[1]?.reconnectEtaMs).toBe(30_000);
    await clock.advance(10_000);
    expect(cloud.gateway.manager.reconnectEtaMs('agent-a')).toBe(20_000);
  });

  it('treats overload reported by AGENT_STATUS as unavailable until it clears, then drains', async () => {
    const project = await seedProject(cloud.repos, 'agent-a');
    const { agent } = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    await cloud.log.wait('agent.online');
    agent.send('AGENT_STATUS', {
      overloaded: true,
      maxConcurrentTasks: 3,
      metrics: METRICS,
      overload: { resource: 'cpu', percent: 97.2, sustainedMs: 30_000 },
    });
    await cloud.log.wait('agent.status', (s) => s.status.overloaded);
    const task = await seedTask(cloud.repos, project);
    const r = await cloud.gateway.dispatcher.dispatch(task);
    expect(r).toMatchObject({
      queued: true,
      reason: 'agent agent-a is busy: CPU 97 % for 30s; your task is next',
      reconnectEtaMs: null,
    });
    expect(cloud.log.of('task.queued')[0]).toMatchObject({ agentOnline: true });
    agent.send('AGENT_STATUS', { overloaded: false, maxConcurrentTasks: 3, metrics: METRICS });
    expect((await agent.next('TASK_SUBMIT')).payload.taskId).toBe(task.id);
    await agent.close();
  });
});

describe('gateway: startup reconciliation', () => {
  it('dispatches pending tasks and fails tasks whose agent does not return within the grace period', async () => {
    const clock = new ManualClock();
    const first = await startCloud({ clock });
    const project = await seedProject(first.repos, 'agent-a');
    const pending = await seedTask(first.repos, project);
    const running = await seedTask(first.repos, project);
    await first.repos.tasks.transition(running.id, 'submitted');
    await first.repos.tasks.transition(running.id, 'running');
    const dir = first.dir;
    await first.stop();

    const cloud = await startCloud({ dir, clock, config: { reconnectGraceMs: 10 * 60_000 } });
    try {
      await cloud.gateway.reconcileOnStartup();
      expect((await cloud.repos.tasks.findById(pending.id))?.status).toBe('queued');
      await clock.advance(10 * 60_000 - 1);
      expect((await cloud.repos.tasks.findById(running.id))?.status).toBe('running');
      await clock.advance(1);
      const failed = await cloud.log.wait('task.failed', (e) => e.task.id === running.id);
      expect(failed.task).toMatchObject({ errorCode: 'AGENT_LOST', recoverable: true });
      expect(failed.task.errorMessage).toContain('did not reconnect within 10 min');
      // The pending task was only queued: its fate is the queue TTL, not the grace period.
      expect((await cloud.repos.tasks.findById(pending.id))?.status).toBe('queued');
    } finally {
      await cloud.stop();
      removeDir(dir);
    }
  });

  it('does not lose the tasks of an agent that is alive on another instance; once that instance is gone they get the grace', async () => {
    const clock = new ManualClock();
    const cloud = await startCloud({ clock, instanceId: 'here', config: { reconnectGraceMs: 60_000 } });
    try {
      const project = await seedProject(cloud.repos, 'agent-a');
      const running = await seedTask(cloud.repos, project);
      await cloud.repos.tasks.transition(running.id, 'submitted');
      await cloud.repos.tasks.transition(running.id, 'running');
      await cloud.repos.agents.upsert({ id: 'agent-a', status: 'online' });
      await cloud.repos.agents.claim('agent-a', 'there', clock.now());

      await cloud.gateway.reconcileOnStartup();
      await clock.advance(60_000);
      expect((await cloud.repos.tasks.findById(running.id))?.status).toBe('running');
      expect(cloud.log.of('task.failed')).toEqual([]);

      // The leader finds "there" dead and releases its agents: now the grace runs out for real.
      expect(await cloud.repos.agents.releaseAllBut(['here'])).toEqual(['agent-a']);
      cloud.gateway.agentsReleased(['agent-a']);
      await clock.advance(60_000);
      const failed = await cloud.log.wait('task.failed', (e) => e.task.id === running.id);
      expect(failed.task).toMatchObject({ errorCode: 'AGENT_LOST' });
    } finally {
      await cloud.stop();
      removeDir(cloud.dir);
    }
  });
});
