import { performance } from 'node:perf_hooks';
import { createMessage } from '@bematic/protocol';
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
  TASK_METRICS,
} from './harness.js';

/** A refused task must be sent again within this long of the signal that clears the reason. */
const RESEND_BOUND_MS = 1000;

describe('protocol v2: attempts, acknowledged results, resend when a refusal clears', () => {
  let cloud: CloudHarness;
  const keys: Record<string, string> = {};

  beforeEach(async () => {
    cloud = await startCloud({ clock: new ManualClock(), config: { heartbeatIntervalMs: 60_000 } });
    for (const id of ['agent-a', 'agent-b']) keys[id] = (await cloud.gateway.apiKeys.create(id)).key;
  });
  afterEach(async () => {
    await cloud.stop();
    removeDir(cloud.dir);
  });

  const connect = async (agentId: string) => {
    const { agent, response } = await RawAgent.connect(cloud.url, { agentId, apiKey: keys[agentId]! });
    expect(response.payload.success).toBe(true);
    await cloud.log.wait('agent.online', (e) => e.agentId === agentId);
    return agent;
  };
  /** Everything the agent sent before this has been handled: the cloud handles one frame at a time. */
  let seq = 0;
  const settled = async (agent: RawAgent) => {
    seq += 1;
    const mine = seq;
    agent.send('HEARTBEAT_PING', { seq: mine, sentAt: 1 });
    await agent.next('HEARTBEAT_PONG', (m) => m.payload.seq === mine);
  };
  const complete = (taskId: string, attempt?: number) => ({
    taskId,
    ...(attempt !== undefined && { attempt }),
    result: 'done',
    metrics: TASK_METRICS,
    filesChanged: [],
    commandsRun: [],
  });
  /** Time from `signal` to the next TASK_SUBMIT of the task reaching `agent`. */
  const resentWithin = async (agent: RawAgent, taskId: string, signal: () => void) => {
    const started = performance.now();
    const next = agent.next('TASK_SUBMIT', (m) => m.payload.taskId === taskId);
    signal();
    const submit = await next;
    return { submit, ms: performance.now() - started };
  };

  it('ignores and audits a message from an earlier attempt; acks the current one, and a duplicate again', async () => {
    const project = await seedProject(cloud.repos, 'agent-a');
    const task = await seedTask(cloud.repos, project);
    const first = await connect('agent-a');
    await cloud.gateway.dispatcher.dispatch(task);
    expect((await first.next('TASK_SUBMIT')).payload.attempt).toBe(1);
    // The ACK is lost with the connection: the task is sent again, as attempt 2.
    await first.terminate();
    await cloud.log.wait('agent.offline');
    const second = await connect('agent-a');
    expect((await second.next('TASK_SUBMIT')).payload.attempt).toBe(2);

    second.send('TASK_PROGRESS', { taskId: task.id, attempt: 1, kind: 'status', message: 'old run' });
    second.send('TASK_COMPLETE', complete(task.id, 1));
    await settled(second);
    const row = await cloud.repos.tasks.findById(task.id);
    expect(row).toMatchObject({ status: 'submitted', attempt: 2, result: null });
    expect(second.all('TASK_RESULT_ACK')).toEqual([]);
    const stale = await cloud.repos.audit.list({ action: 'task.stale_message', resourceId: task.id });
    expect(
      stale.map((e) => [e.details.type, e.details.code, e.details.attempt, e.details.currentAttempt]),
    ).toEqual(
      expect.arrayContaining([
        ['TASK_PROGRESS', 'STALE_ATTEMPT', 1, 2],
        ['TASK_COMPLETE', 'STALE_ATTEMPT', 1, 2],
      ]),
    );
    expect(cloud.log.of('task.completed')).toEqual([]);
    expect(cloud.log.of('task.progress')).toEqual([]);

    second.send('TASK_COMPLETE', complete(task.id, 2));
    expect((await second.next('TASK_RESULT_ACK')).payload).toEqual({ taskId: task.id, attempt: 2 });
    expect((await cloud.repos.tasks.findById(task.id))?.status).toBe('completed');
    // The agent did not hear the ack (say, it reconnected) and sends its result again: acked again, applied once.
    second.send('TASK_COMPLETE', complete(task.id, 2));
    expect((await second.next('TASK_RESULT_ACK')).payload).toEqual({ taskId: task.id, attempt: 2 });
    expect(cloud.log.of('task.completed')).toHaveLength(1);
    expect(await cloud.repos.audit.list({ action: 'task.completed', resourceId: task.id })).toHaveLength(1);
    await second.close();
  });

  it('sends a task refused as OVERLOADED again within a second of AGENT_STATUS {overloaded:false}', async () => {
    const project = await seedProject(cloud.repos, 'agent-a');
    const task = await seedTask(cloud.repos, project);
    const agent = await connect('agent-a');
    await cloud.gateway.dispatcher.dispatch(task);
    await agent.next('TASK_SUBMIT');
    agent.send('TASK_ACK', {
      taskId: task.id,
      accepted: false,
      queued: false,
      code: 'OVERLOADED',
      reason: 'agent overloaded: cpu 97% >= 90%',
      overload: { resource: 'cpu', percent: 97, sustainedMs: 30_000 },
    });
    const queued = await cloud.log.wait('task.queued', (e) => e.task.id === task.id);
    // What the thread shows while the task waits (the notification service shows `reason` as the step).
    expect(queued.reason).toBe('agent agent-a is busy: CPU 97 % for 30s; your task is next');
    expect(queued.agentOnline).toBe(true);
    await settled(agent);
    expect(agent.all('TASK_SUBMIT')).toEqual([]); // not before the reason clears

    const { submit, ms } = await resentWithin(agent, task.id, () =>
      agent.send('AGENT_STATUS', { overloaded: false, maxConcurrentTasks: 3, metrics: METRICS }),
    );
    expect(submit.payload.attempt).toBe(2);
    expect(ms).toBeLessThan(RESEND_BOUND_MS);
    agent.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false });
    await cloud.log.wait('task.started', (e) => e.task.id === task.id);
    await agent.close();
  });

  it('sends a task refused as AT_CAPACITY again within a second of a slot freeing (a terminal message)', async () => {
    const project = await seedProject(cloud.repos, 'agent-a');
    const running = await seedTask(cloud.repos, project);
    const waiting = await seedTask(cloud.repos, project);
    const agent = await connect('agent-a');
    await cloud.gateway.dispatcher.dispatch(running);
    await agent.next('TASK_SUBMIT', (m) => m.payload.taskId === running.id);
    agent.send('TASK_ACK', { taskId: running.id, accepted: true, queued: false });
    await cloud.log.wait('task.started', (e) => e.task.id === running.id);
    await cloud.gateway.dispatcher.dispatch(waiting);
    await agent.next('TASK_SUBMIT', (m) => m.payload.taskId === waiting.id);
    agent.send('TASK_ACK', {
      taskId: waiting.id,
      accepted: false,
      queued: false,
      code: 'AT_CAPACITY',
      reason: 'every slot is taken',
    });
    const queued = await cloud.log.wait('task.queued', (e) => e.task.id === waiting.id);
    expect(queued.reason).toBe('agent agent-a has no free slot; your task is next');
    await settled(agent);
    expect(agent.all('TASK_SUBMIT')).toEqual([]);

    const { submit, ms } = await resentWithin(agent, waiting.id, () =>
      agent.send('TASK_COMPLETE', complete(running.id)),
    );
    expect(submit.payload.attempt).toBe(2);
    expect(ms).toBeLessThan(RESEND_BOUND_MS);
    expect((await agent.next('TASK_RESULT_ACK')).payload.taskId).toBe(running.id);
    await agent.close();
  });

  it('sends a refused task to another eligible agent within a second of it coming online', async () => {
    const project = await seedProject(cloud.repos, 'agent-a', ['agent-b']);
    const task = await seedTask(cloud.repos, project);
    const a = await connect('agent-a');
    await cloud.gateway.dispatcher.dispatch(task);
    await a.next('TASK_SUBMIT');
    a.send('TASK_ACK', {
      taskId: task.id,
      accepted: false,
      queued: false,
      code: 'OVERLOADED',
      overload: { resource: 'memory', percent: 93.4, sustainedMs: 125_000 },
    });
    const queued = await cloud.log.wait('task.queued', (e) => e.task.id === task.id);
    expect(queued.reason).toBe('agent agent-a is busy: memory 93 % for 2 min; your task is next');

    const started = performance.now();
    const b = await connect('agent-b');
    const submit = await b.next('TASK_SUBMIT', (m) => m.payload.taskId === task.id);
    expect(performance.now() - started).toBeLessThan(RESEND_BOUND_MS);
    expect(submit.payload.attempt).toBe(2);
    expect((await cloud.repos.tasks.findById(task.id))?.agentId).toBe('agent-b');
    b.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false });
    await cloud.log.wait('task.started', (e) => e.task.id === task.id);
    // agent-a's late messages about it are from an agent that no longer owns it.
    a.send('TASK_PROGRESS', { taskId: task.id, attempt: 1, kind: 'status', message: 'late' });
    expect((await a.next('SYSTEM_ERROR')).payload.code).toBe('TASK_NOT_OWNED');
    await a.close();
    await b.close();
  });

  it('sends a task refused as AT_CAPACITY by a healthy agent to another eligible agent coming online', async () => {
    const project = await seedProject(cloud.repos, 'agent-a', ['agent-b']);
    const task = await seedTask(cloud.repos, project);
    const a = await connect('agent-a');
    await cloud.gateway.dispatcher.dispatch(task);
    await a.next('TASK_SUBMIT');
    a.send('TASK_ACK', { taskId: task.id, accepted: false, queued: false, code: 'AT_CAPACITY' });
    await cloud.log.wait('task.queued', (e) => e.task.id === task.id);
    // Full, not unhealthy: agent-a is still a healthy agent, yet its refused task moves.
    expect(cloud.gateway.manager.isHealthy('agent-a')).toBe(true);

    const started = performance.now();
    const b = await connect('agent-b');
    const submit = await b.next('TASK_SUBMIT', (m) => m.payload.taskId === task.id);
    expect(performance.now() - started).toBeLessThan(RESEND_BOUND_MS);
    expect(submit.payload.attempt).toBe(2);
    expect((await cloud.repos.tasks.findById(task.id))?.agentId).toBe('agent-b');
    await a.close();
    await b.close();
  });

  it('refuses to send a frame the agent would refuse: sendToAgent answers false and nothing reaches the wire', async () => {
    const agent = await connect('agent-a');
    // attempt 0 is outside the schema (attempts count from 1): the same check the agent's parse applies.
    const bad = createMessage('TASK_RESULT_ACK', { taskId: 't-bad', attempt: 0 });
    expect(await cloud.gateway.manager.sendToAgent('agent-a', bad)).toBe(false);
    const good = createMessage('TASK_RESULT_ACK', { taskId: 't-good', attempt: 1 });
    expect(await cloud.gateway.manager.sendToAgent('agent-a', good)).toBe(true);
    expect((await agent.next('TASK_RESULT_ACK')).id).toBe(good.id);
    await settled(agent);
    expect(agent.received.filter((m) => m.type === 'TASK_RESULT_ACK')).toEqual([]);
    expect(agent.invalid).toEqual([]);
    await agent.close();
  });

  it('reads a refusal from its code only: a reason or path with "limit" or "resource" does not mark an agent busy', async () => {
    const project = await seedProject(cloud.repos, 'agent-a', [], '/srv/rate-limit/resource-pool');
    const task = await seedTask(cloud.repos, project);
    const agent = await connect('agent-a');
    await cloud.gateway.dispatcher.dispatch(task);
    await agent.next('TASK_SUBMIT');
    agent.send('TASK_ACK', {
      taskId: task.id,
      accepted: false,
      queued: false,
      code: 'PATH_NOT_ALLOWED',
      reason: '/srv/rate-limit/resource-pool is outside the allowed roots (resource limit busy capacity)',
    });
    const failed = await cloud.log.wait('task.failed', (e) => e.task.id === task.id);
    expect(failed.task).toMatchObject({ errorCode: 'PATH_NOT_ALLOWED', recoverable: false });
    expect(cloud.gateway.manager.isOverloaded('agent-a')).toBe(false);
    expect(cloud.gateway.manager.isHealthy('agent-a')).toBe(true);
    expect(await cloud.repos.offlineQueue.findByTask(task.id)).toBeUndefined();

    // And the healthy agent still gets the next task at once.
    const next = await seedTask(cloud.repos, project);
    const r = await cloud.gateway.dispatcher.dispatch(next);
    expect(r).toMatchObject({ sent: true, queued: false });
    await agent.close();
  });

  it('a DUPLICATE refusal neither fails nor resends: the result the agent already has decides', async () => {
    const project = await seedProject(cloud.repos, 'agent-a');
    const task = await seedTask(cloud.repos, project);
    const agent = await connect('agent-a');
    await cloud.gateway.dispatcher.dispatch(task);
    await agent.next('TASK_SUBMIT');
    agent.send('TASK_ACK', { taskId: task.id, accepted: false, queued: false, code: 'DUPLICATE' });
    agent.send('TASK_COMPLETE', complete(task.id));
    expect((await agent.next('TASK_RESULT_ACK')).payload.attempt).toBe(1);
    expect((await cloud.repos.tasks.findById(task.id))?.status).toBe('completed');
    expect(cloud.log.of('task.failed')).toEqual([]);
    expect(await cloud.repos.offlineQueue.findByTask(task.id)).toBeUndefined();
    await agent.close();
  });
});
