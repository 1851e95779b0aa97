import { ManualClock } from '@bematic/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Project } from '../../src/db/repositories/types.js';
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

const HOUR = 60 * 60 * 1000;

describe('gateway: outbox, dispatch and task messages', () => {
  let cloud: CloudHarness;
  let clock: ManualClock;
  let project: Project;
  const keys: Record<string, string> = {};

  beforeEach(async () => {
    clock = new ManualClock();
    cloud = await startCloud({
      clock,
      config: { heartbeatIntervalMs: 1_000, offlineTtlMs: HOUR, offlineSweepIntervalMs: 60_000 },
    });
    project = await seedProject(cloud.repos, 'agent-a', ['agent-b']);
    for (const id of ['agent-a', 'agent-b']) keys[id] = (await cloud.gateway.apiKeys.create(id)).key;
  });
  afterEach(async () => {
    await cloud.stop();
    removeDir(cloud.dir);
  });

  const connect = async (agentId: string, extra = {}) => {
    const { agent, response } = await RawAgent.connect(cloud.url, {
      agentId,
      apiKey: keys[agentId]!,
      ...extra,
    });
    expect(response.payload.success).toBe(true);
    return { agent, response };
  };
  const status = async (taskId: string) => (await cloud.repos.tasks.findById(taskId))?.status;

  it('queues for an offline agent, then drains in priority order, keeping rows until TASK_ACK', async () => {
    const low = await seedTask(cloud.repos, project, { priority: 'low' });
    const normal = await seedTask(cloud.repos, project, { priority: 'normal' });
    const urgent = await seedTask(cloud.repos, project, { priority: 'urgent' });
    const high = await seedTask(cloud.repos, project, { priority: 'high' });
    for (const t of [low, normal, urgent, high]) {
      const r = await cloud.gateway.dispatcher.dispatch(t);
      expect(r).toMatchObject({ agentId: 'agent-a', sent: false, queued: true });
      expect(r.reason).toContain('offline');
    }
    expect(await status(urgent.id)).toBe('queued');
    expect(cloud.log.of('task.queued').map((e) => e.agentOnline)).toEqual([false, false, false, false]);
    expect(
      (await cloud.gateway.directory.listAgents({ limit: 10 })).agents.find((a) => a.agentId === 'agent-a')
        ?.offlineQueueDepth,
    ).toBe(4);

    // agent-b (the fallback) being online changes routing only for new dispatches; drain what agent-a has.
    const { agent } = await connect('agent-a');
    const submits = [];
    for (let i = 0; i < 4; i++) submits.push(await agent.next('TASK_SUBMIT'));
    expect(submits.map((m) => m.payload.priority)).toEqual(['urgent', 'high', 'normal', 'low']);
    await cloud.gateway.outbox.idle();
    // Written and sent, but not acknowledged: the rows stay.
    for (const t of [low, normal, urgent, high]) {
      expect(await cloud.repos.offlineQueue.findByTask(t.id)).toMatchObject({ attempts: 1 });
      expect(await status(t.id)).toBe('submitted');
    }
    agent.send('TASK_ACK', { taskId: urgent.id, accepted: true, queued: false });
    await cloud.log.wait('task.started', (e) => e.task.id === urgent.id);
    expect(await cloud.repos.offlineQueue.findByTask(urgent.id)).toBeUndefined();
    expect((await cloud.repos.tasks.findById(urgent.id))?.startedAt).toBe(clock.now());
    agent.send('TASK_ACK', { taskId: high.id, accepted: true, queued: true, queuePosition: 2 });
    const ack = await cloud.log.wait('task.acknowledged', (e) => e.task.id === high.id);
    expect(ack).toMatchObject({ queued: true, queuePosition: 2 });
    expect(await cloud.repos.offlineQueue.findByTask(high.id)).toBeUndefined();
    expect(await status(high.id)).toBe('submitted');
    // The first progress of a task queued at the agent means it started.
    agent.send('TASK_PROGRESS', { taskId: high.id, kind: 'started', message: 'Starting' });
    await cloud.log.wait('task.progress', (e) => e.task.id === high.id);
    expect(await status(high.id)).toBe('running');
    await agent.close();
  });

  it('writes the outbox row before TASK_SUBMIT and resends unacknowledged submits on reconnect', async () => {
    const first = await connect('agent-a');
    const task = await seedTask(cloud.repos, project);
    const result = await cloud.gateway.dispatcher.dispatch(task);
    expect(result).toMatchObject({ agentId: 'agent-a', sent: true, queued: false, reconnectEtaMs: null });
    const submit = await first.agent.next('TASK_SUBMIT');
    expect(submit.payload).toEqual({ ...task.submission, attempt: 1 });
    expect(await cloud.repos.offlineQueue.findByTask(task.id)).toBeDefined();
    await cloud.log.wait('task.submitted', (e) => e.task.id === task.id);

    // Lost before the ACK: the task is queued again and resent on reconnect.
    await first.agent.terminate();
    await cloud.log.wait('task.queued', (e) => e.task.id === task.id);
    expect(await status(task.id)).toBe('queued');
    const second = await connect('agent-a');
    expect((await second.agent.next('TASK_SUBMIT')).payload.taskId).toBe(task.id);
    second.agent.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false });
    await cloud.log.wait('task.started');
    await second.agent.close();
  });

  it('fails a task whose queue row expired, saying why', async () => {
    const task = await seedTask(cloud.repos, project);
    await cloud.gateway.dispatcher.dispatch(task);
    await clock.advance(HOUR - 60_000);
    expect(await status(task.id)).toBe('queued');
    await clock.advance(60_000);
    const failed = await cloud.log.wait('task.failed', (e) => e.task.id === task.id);
    expect(failed.task).toMatchObject({ status: 'failed', errorCode: 'QUEUE_EXPIRED', recoverable: true });
    expect(failed.task.errorMessage).toBe(
      'Agent agent-a was offline for 1h; the task expired from the queue',
    );
    expect(await cloud.repos.offlineQueue.findByTask(task.id)).toBeUndefined();
    // A later reconnect does not resurrect it.
    const { agent } = await connect('agent-a');
    await cloud.gateway.outbox.idle();
    expect(agent.all('TASK_SUBMIT')).toEqual([]);
    await agent.close();
  });

  it('cancels a task waiting in the offline queue', async () => {
    const task = await seedTask(cloud.repos, project);
    await cloud.gateway.dispatcher.dispatch(task);
    expect(await cloud.gateway.dispatcher.cancel(task.id, 'no longer needed', 'U1')).toEqual({
      outcome: 'removed-from-queue',
    });
    expect(await status(task.id)).toBe('cancelled');
    expect(await cloud.repos.offlineQueue.findByTask(task.id)).toBeUndefined();
    expect(cloud.log.of('task.cancelled').map((e) => e.message)).toEqual([
      { taskId: task.id, attempt: 1, reason: 'no longer needed' },
    ]);
    expect(await cloud.gateway.dispatcher.cancel(task.id, 'again', 'U1')).toEqual({
      outcome: 'already-terminal',
    });
    expect(await cloud.gateway.dispatcher.cancel('task_missing', 'x', 'U1')).toEqual({
      outcome: 'not-found',
    });
  });

  it('reads the tasks of frames that arrive together in one statement', async () => {
    const { agent } = await connect('agent-a');
    const tasks = [];
    for (let i = 0; i < 3; i++) {
      const t = await seedTask(cloud.repos, project);
      await cloud.gateway.dispatcher.dispatch(t);
      await agent.next('TASK_SUBMIT');
      tasks.push(t);
    }
    const reads = vi.spyOn(cloud.repos.tasks, 'findByIds');
    // Written in one turn of the loop, so the cloud reads them in one chunk.
    for (const t of tasks) agent.send('TASK_ACK', { taskId: t.id, accepted: true, queued: false });
    for (const t of tasks) await cloud.log.wait('task.started', (e) => e.task.id === t.id);
    expect(reads).toHaveBeenCalledTimes(1);
    expect([...(reads.mock.calls[0]?.[0] ?? [])].sort()).toEqual(tasks.map((t) => t.id).sort());
  });

  it('records a duplicate TASK_COMPLETE once: one terminal state, one event, one audit entry', async () => {
    const { agent } = await connect('agent-a');
    const task = await seedTask(cloud.repos, project);
    await cloud.gateway.dispatcher.dispatch(task);
    await agent.next('TASK_SUBMIT');
    agent.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false });
    agent.send('TASK_STREAM', { taskId: task.id, seq: 0, text: 'Looking at auth.ts' });
    const complete = {
      taskId: task.id,
      result: 'Fixed the login bug',
      sessionId: 'claude-sess-1',
      metrics: TASK_METRICS,
      filesChanged: ['src/auth.ts'],
      commandsRun: ['npm test'],
      warning: 'continued once',
    };
    agent.send('TASK_COMPLETE', complete);
    agent.send('TASK_COMPLETE', complete);
    agent.send('TASK_ERROR', {
      taskId: task.id,
      error: 'late',
      recoverable: false,
      errorCode: 'EXECUTION_FAILED',
    });
    // The frames are handled in order; a PONG after them marks the point they were all applied.
    agent.send('HEARTBEAT_PONG', { seq: 0, sentAt: clock.now(), metrics: METRICS });
    await cloud.log.wait('agent.heartbeat');

    expect(cloud.log.of('task.completed')).toHaveLength(1);
    expect(cloud.log.of('task.failed')).toHaveLength(0);
    expect(cloud.log.of('task.stream').map((e) => e.text)).toEqual(['Looking at auth.ts']);
    const stored = await cloud.repos.tasks.findById(task.id);
    expect(stored).toMatchObject({
      status: 'completed',
      result: 'Fixed the login bug',
      sessionId: 'claude-sess-1',
      filesChanged: ['src/auth.ts'],
      commandsRun: ['npm test'],
      warning: 'continued once',
      inputTokens: 10,
      costUsd: 0.01,
    });
    expect(await cloud.repos.audit.list({ action: 'task.completed', resourceId: task.id })).toHaveLength(1);
    expect(await cloud.repos.audit.list({ action: 'task.late_message', resourceId: task.id })).toHaveLength(
      1,
    );
    const sessions = await cloud.repos.sessions.findByTask(task.id);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({
      status: 'completed',
      claudeSessionId: 'claude-sess-1',
      outputTokens: 20,
    });
    await agent.close();
  });

  it('ignores a TASK_ERROR that arrives after the task was cancelled', async () => {
    const { agent } = await connect('agent-a');
    const task = await seedTask(cloud.repos, project);
    await cloud.gateway.dispatcher.dispatch(task);
    await agent.next('TASK_SUBMIT');
    agent.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false });
    await cloud.log.wait('task.started');
    expect(await cloud.gateway.dispatcher.cancel(task.id, 'stop', 'U1')).toEqual({
      outcome: 'sent-to-agent',
    });
    expect((await agent.next('TASK_CANCEL')).payload).toEqual({
      taskId: task.id,
      attempt: 1,
      reason: 'stop',
    });
    agent.send('TASK_CANCELLED', { taskId: task.id, reason: 'stop', partialResult: 'half done' });
    await cloud.log.wait('task.cancelled');
    agent.send('TASK_ERROR', {
      taskId: task.id,
      error: 'aborted',
      recoverable: false,
      errorCode: 'EXECUTION_FAILED',
    });
    agent.send('HEARTBEAT_PONG', { seq: 0, sentAt: clock.now(), metrics: METRICS });
    await cloud.log.wait('agent.heartbeat');
    expect(await cloud.repos.tasks.findById(task.id)).toMatchObject({
      status: 'cancelled',
      result: 'half done',
    });
    expect(cloud.log.of('task.failed')).toEqual([]);
    const late = await cloud.repos.audit.list({ action: 'task.late_message', resourceId: task.id });
    expect(late.map((e) => e.details.message)).toEqual(['TASK_ERROR']);
    await agent.close();
  });

  it('refuses messages about a task from an agent that does not own it', async () => {
    const a = await connect('agent-a');
    const b = await connect('agent-b');
    const task = await seedTask(cloud.repos, project);
    await cloud.gateway.dispatcher.dispatch(task);
    await a.agent.next('TASK_SUBMIT');
    b.agent.send('TASK_COMPLETE', {
      taskId: task.id,
      result: 'hijack',
      metrics: TASK_METRICS,
      filesChanged: [],
      commandsRun: [],
    });
    expect((await b.agent.next('SYSTEM_ERROR')).payload.code).toBe('TASK_NOT_OWNED');
    expect(await status(task.id)).toBe('submitted');
    expect(await cloud.repos.audit.list({ action: 'agent.foreign_task' })).toHaveLength(1);
    await a.agent.close();
    await b.agent.close();
  });

  it('routes around an overloaded primary to the first healthy fallback', async () => {
    const a = await connect('agent-a');
    const b = await connect('agent-b');
    a.agent.send('AGENT_STATUS', {
      overloaded: true,
      reason: 'memory',
      maxConcurrentTasks: 3,
      metrics: { ...METRICS, memoryPercent: 95 },
    });
    await cloud.log.wait('agent.status');
    const task = await seedTask(cloud.repos, project);
    expect(await cloud.gateway.dispatcher.dispatch(task)).toMatchObject({ agentId: 'agent-b', sent: true });
    expect((await b.agent.next('TASK_SUBMIT')).payload.taskId).toBe(task.id);
    expect((await cloud.repos.tasks.findById(task.id))?.agentId).toBe('agent-b');
    const snapshot = (await cloud.gateway.directory.listAgents({ limit: 10 })).agents.find(
      (x) => x.agentId === 'agent-a',
    );
    expect(snapshot).toMatchObject({ overloaded: true, metrics: { memoryPercent: 95 } });
    await a.agent.close();
    await b.agent.close();
  });

  it('moves a task refused for capacity to another agent, and fails one refused for another reason', async () => {
    const a = await connect('agent-a');
    const b = await connect('agent-b');
    const task = await seedTask(cloud.repos, project);
    await cloud.gateway.dispatcher.dispatch(task);
    await a.agent.next('TASK_SUBMIT');
    a.agent.send('TASK_ACK', {
      taskId: task.id,
      accepted: false,
      queued: false,
      code: 'OVERLOADED',
      reason: 'agent overloaded',
    });
    expect((await b.agent.next('TASK_SUBMIT')).payload.taskId).toBe(task.id);
    expect(await cloud.repos.offlineQueue.findByTask(task.id)).toMatchObject({ agentId: 'agent-b' });

    const other = await seedTask(cloud.repos, project);
    await cloud.gateway.dispatcher.dispatch(other);
    const sent = await b.agent.next('TASK_SUBMIT', (m) => m.payload.taskId === other.id);
    b.agent.send('TASK_ACK', {
      taskId: sent.payload.taskId,
      accepted: false,
      queued: false,
      code: 'PATH_NOT_ALLOWED',
      reason: 'path /x not allowed',
    });
    const failed = await cloud.log.wait('task.failed', (e) => e.task.id === other.id);
    expect(failed.task).toMatchObject({ errorCode: 'PATH_NOT_ALLOWED', recoverable: false });
    expect(failed.task.errorMessage).toContain('path /x not allowed');
    expect(await cloud.repos.offlineQueue.findByTask(other.id)).toBeUndefined();
    await a.agent.close();
    await b.agent.close();
  });

  it('cancels a task held by an offline agent and tells the agent when it returns', async () => {
    const first = await connect('agent-a');
    const task = await seedTask(cloud.repos, project);
    await cloud.gateway.dispatcher.dispatch(task);
    await first.agent.next('TASK_SUBMIT');
    first.agent.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false });
    await cloud.log.wait('task.started');
    await first.agent.terminate();
    await cloud.log.wait('agent.offline');
    expect(await cloud.gateway.dispatcher.cancel(task.id, 'stop', 'U1')).toEqual({
      outcome: 'cancelled-agent-offline',
    });
    expect(await status(task.id)).toBe('cancelled');
    const { agent, response } = await connect('agent-a', { activeTaskIds: [task.id] });
    expect(response.payload.cancelTaskIds).toEqual([task.id]);
    await agent.close();
  });

  it('reconciles on reconnect: resends a never-acknowledged task, fails a lost running one', async () => {
    const first = await connect('agent-a');
    const running = await seedTask(cloud.repos, project);
    const kept = await seedTask(cloud.repos, project);
    const unacked = await seedTask(cloud.repos, project);
    for (const t of [running, kept]) {
      await cloud.gateway.dispatcher.dispatch(t);
      await first.agent.next('TASK_SUBMIT', (m) => m.payload.taskId === t.id);
      first.agent.send('TASK_ACK', { taskId: t.id, accepted: true, queued: false });
      await cloud.log.wait('task.started', (e) => e.task.id === t.id);
    }
    await cloud.gateway.dispatcher.dispatch(unacked);
    await first.agent.next('TASK_SUBMIT', (m) => m.payload.taskId === unacked.id);
    // Simulate an agent that received the submit but lost it, and whose outbox row went with an ACK it never sent.
    await cloud.repos.offlineQueue.removeByTask(unacked.id);
    await first.agent.terminate();
    await cloud.log.wait('agent.offline');

    const { agent } = await connect('agent-a', { activeTaskIds: [kept.id] });
    expect((await agent.next('TASK_SUBMIT')).payload.taskId).toBe(unacked.id);
    const lost = await cloud.log.wait('task.failed', (e) => e.task.id === running.id);
    expect(lost.task).toMatchObject({ errorCode: 'AGENT_LOST', recoverable: true });
    expect(lost.task.errorMessage).toContain('restarted while running');
    expect(await status(kept.id)).toBe('running');
    await agent.close();
  });
});
