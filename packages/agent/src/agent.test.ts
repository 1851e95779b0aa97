import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type Clock,
  PROTOCOL_VERSION,
  ResourceMetrics,
  systemClock,
  type TaskPriority,
} from '@bematic/protocol';
import { ManualClock } from '@bematic/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeCloud, type FakeCloudOptions } from '../test/support/fake-cloud.js';
import { ManualExecutor } from '../test/support/manual-executor.js';
import { Agent, partitionStopAfterMs } from './agent.js';
import { agentWsUrl } from './config.js';
import type { Executor } from './executor/executor.js';
import { SleepExecutor } from './executor/sleep-executor.js';
import { DEFAULT_CPU_WINDOW_MS, ResourceMonitor, type ResourceSample } from './resources/resource-monitor.js';

const base = realpathSync(mkdtempSync(path.join(tmpdir(), 'bematic-agent-')));
const root = path.join(base, 'root');
const dir = (name: string) => {
  const d = path.join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
};
const outside = path.join(base, 'outside');
mkdirSync(outside, { recursive: true });

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  executor?: Executor;
  max?: number;
  cloud?: FakeCloudOptions;
  sample?: Partial<ResourceSample>;
  stateDir?: string;
  existingCloud?: FakeCloud;
  waitForAuth?: boolean;
  projectConcurrency?: number;
  clock?: Clock;
  shutdownGraceMs?: number;
}

async function setup(opts: Setup = {}) {
  const cloud = opts.existingCloud ?? (await FakeCloud.start(opts.cloud));
  if (!opts.existingCloud) cleanups.push(() => cloud.close());
  const sample: ResourceSample = {
    cpuPercent: 12,
    memoryPercent: 34,
    rssMb: 56,
    loadAvg1m: 0.5,
    ...opts.sample,
  };
  // Each sample stands for a whole CPU window, so one `monitor.sample()` decides.
  let sampledAt = Date.now();
  const monitor = new ResourceMonitor({
    cpuThreshold: 90,
    memoryThreshold: 90,
    recoverySamples: 2,
    clock: { ...systemClock, now: () => sampledAt },
    sampler: () => {
      sampledAt += DEFAULT_CPU_WINDOW_MS;
      return { ...sample };
    },
    intervalMs: 3_600_000,
  });
  const agent = new Agent({
    config: {
      cloudUrls: [agentWsUrl(cloud.url)!],
      agentId: 'agent-1',
      agentKey: 'secret',
      maxConcurrentTasks: opts.max ?? 3,
      roots: [root],
      cpuThreshold: 90,
      memoryThreshold: 90,
      reconnectMaxMs: 50,
      stateDir: opts.stateDir,
      worktreeDir: path.join(root, '..', 'worktrees'),
      branchPrefix: 'bematic/',
      projectConcurrency: opts.projectConcurrency ?? opts.max ?? 3,
      githubApiUrl: 'https://api.github.com',
      githubToken: undefined,
      ...(opts.shutdownGraceMs !== undefined && { shutdownGraceMs: opts.shutdownGraceMs }),
    },
    executor: opts.executor ?? new SleepExecutor(),
    resourceMonitor: monitor,
    reconnectBaseMs: 10,
    streamFlushMs: 20,
    hostname: 'test-host',
    ...(opts.clock !== undefined && { clock: opts.clock }),
  });
  cleanups.push(() => agent.stop({ graceful: false }));
  const authed = once(agent, 'authenticated');
  agent.start();
  if (opts.waitForAuth !== false) await authed;
  return { cloud, agent, monitor, sample };
}

/** Moves a manual clock through the agent's reconnect delays, letting the sockets work in between, until it is back. */
async function reconnectOn(clock: ManualClock, agent: Agent): Promise<void> {
  while (agent.connection.state !== 'ready') {
    await clock.advance(50);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

describe('Agent against a fake cloud', () => {
  it('authenticates first, reporting what it holds', async () => {
    const { cloud } = await setup({ max: 4 });
    expect(cloud.received[0]?.type).toBe('AUTH_REQUEST');
    expect(cloud.authRequests[0]).toEqual({
      agentId: 'agent-1',
      apiKey: 'secret',
      agentVersion: expect.any(String),
      hostname: 'test-host',
      maxConcurrentTasks: 4,
      sandbox: 'on',
      activeTaskIds: [],
      bufferedTaskIds: [],
    });
  });

  it('answers a heartbeat ping with a pong carrying resource metrics', async () => {
    const { cloud } = await setup();
    cloud.send('HEARTBEAT_PING', { seq: 7, sentAt: 1234 });
    const pong = await cloud.waitFor('HEARTBEAT_PONG');
    expect(pong.payload).toMatchObject({ seq: 7, sentAt: 1234 });
    expect(ResourceMetrics.parse(pong.payload.metrics)).toMatchObject({
      cpuPercent: 12,
      memoryPercent: 34,
      rssMb: 56,
    });
  });

  it('runs a task: ACK, progress and stream, then COMPLETE, in that order', async () => {
    const { cloud } = await setup();
    cloud.submit({ taskId: 't1', localPath: dir('p1'), prompt: 'hello world' });
    const complete = await cloud.waitFor('TASK_COMPLETE', (p) => p.taskId === 't1');
    expect(complete.payload).toMatchObject({ result: 'Slept 0 ms', filesChanged: [], commandsRun: [] });
    expect(complete.payload.resourceMetrics?.cpuPercent).toBe(12);
    const types = cloud.received
      .filter((m) => (m.payload as { taskId?: string }).taskId === 't1')
      .map((m) => m.type);
    expect(types[0]).toBe('TASK_ACK');
    expect(types.at(-1)).toBe('TASK_COMPLETE');
    expect(types).toContain('TASK_PROGRESS');
    expect(types.indexOf('TASK_STREAM')).toBeLessThan(types.indexOf('TASK_COMPLETE'));
    expect(cloud.ofType('TASK_ACK', 't1')[0]?.payload).toMatchObject({ accepted: true, queued: false });
    expect(
      cloud
        .ofType('TASK_STREAM', 't1')
        .map((m) => m.payload.text)
        .join(''),
    ).toBe('Working on: hello world\n');
    expect(cloud.ofType('TASK_PROGRESS', 't1')[0]?.payload).toMatchObject({ kind: 'started' });
  });

  it('ignores a duplicate submit, whether the task is running or finished', async () => {
    const executor = new ManualExecutor();
    const { cloud } = await setup({ executor });
    const p = dir('dup');
    cloud.submit({ taskId: 't1', localPath: p });
    await executor.started('t1');
    cloud.submit({ taskId: 't1', localPath: p });
    await cloud.sync();
    executor.complete('t1');
    await cloud.waitFor('TASK_COMPLETE');
    cloud.submit({ taskId: 't1', localPath: p });
    await cloud.sync();
    expect(executor.startOrder).toEqual(['t1']);
    expect(cloud.ofType('TASK_ACK', 't1')).toHaveLength(1);
    expect(cloud.ofType('TASK_COMPLETE', 't1')).toHaveLength(1);
  });

  it('limits concurrency globally and to one writer per directory outside git', async () => {
    const executor = new ManualExecutor();
    const { cloud, agent } = await setup({ executor, max: 2 });
    const [a, b, c] = [dir('a'), dir('b'), dir('c')];
    const allowedTools = ['Read', 'Edit'];
    cloud.submit({ taskId: 't1', localPath: a, allowedTools });
    cloud.submit({ taskId: 't2', localPath: `${b}/../a`, allowedTools });
    cloud.submit({ taskId: 't3', localPath: b, allowedTools });
    cloud.submit({ taskId: 't4', localPath: c, allowedTools });
    await cloud.waitFor('TASK_ACK', (p) => p.taskId === 't4');
    const ack = (id: string) => cloud.ofType('TASK_ACK', id)[0]?.payload;
    expect(ack('t1')).toMatchObject({ accepted: true, queued: false });
    expect(ack('t2')).toMatchObject({ accepted: true, queued: true, queuePosition: 0 });
    expect(ack('t3')).toMatchObject({ accepted: true, queued: false });
    expect(ack('t4')).toMatchObject({ accepted: true, queued: true, queuePosition: 1 });
    expect(agent.queue.counts()).toEqual({ activeTasks: 2, queuedTasks: 2 });
    expect(agent.queue.activeTaskIds().sort()).toEqual(['t1', 't2', 't3', 't4']);

    executor.complete('t1');
    await executor.started('t2');
    expect(executor.startOrder).toEqual(['t1', 't3', 't2']);
    executor.complete('t3');
    await executor.started('t4');
    executor.complete('t2');
    executor.complete('t4');
    await cloud.waitFor('TASK_COMPLETE', (p) => p.taskId === 't4');
    expect(executor.startOrder).toEqual(['t1', 't3', 't2', 't4']);
  });

  it('runs writers of one git project at once, each on its own branch, up to the per-project limit', async () => {
    const repo = dir('repo');
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=d', '-c', 'user.email=d@e', ...args], {
        cwd: repo,
        encoding: 'utf8',
      });
    git('init', '-q', '-b', 'main');
    git('commit', '-q', '--allow-empty', '-m', 'init');
    const head = git('rev-parse', 'HEAD').trim();
    const executor = new ManualExecutor();
    const { cloud } = await setup({ executor, max: 3, projectConcurrency: 2 });
    const allowedTools = ['Read', 'Edit', 'Write'];
    for (const id of ['w1', 'w2', 'w3']) cloud.submit({ taskId: id, localPath: repo, allowedTools });
    cloud.submit({ taskId: 'other', projectId: 'p2', localPath: dir('elsewhere'), allowedTools });
    const [w1, w2] = await Promise.all([executor.started('w1'), executor.started('w2')]);
    await executor.started('other');
    expect(cloud.ofType('TASK_ACK', 'w3')[0]?.payload).toMatchObject({ accepted: true, queued: true });
    expect(w1.place).toMatchObject({ mode: 'worktree', projectPath: repo });
    expect(w2.place?.cwd).not.toBe(w1.place?.cwd);
    writeFileSync(path.join(w1.place!.cwd, 'one.ts'), 'one\n');
    writeFileSync(path.join(w2.place!.cwd, 'two.ts'), 'two\n');

    executor.complete('w1');
    await executor.started('w3');
    executor.complete('w2');
    executor.complete('w3');
    const done = (await cloud.waitFor('TASK_COMPLETE', (p) => p.taskId === 'w2')).payload;
    const first = cloud.ofType('TASK_COMPLETE', 'w1')[0]!.payload;
    expect(first.workspace).toMatchObject({
      mode: 'worktree',
      branch: 'bematic/w1',
      base: 'main',
      baseCommit: head,
      files: [{ path: 'one.ts', added: 1, removed: 0, binary: false }],
    });
    expect(done.workspace?.branch).toBe('bematic/w2');
    expect(git('log', '--format=%s', '-1', 'bematic/w2').trim()).toBe('fix it');
    expect(git('status', '--porcelain')).toBe('');
    expect(git('rev-parse', 'HEAD').trim()).toBe(head);

    // The cloud asks for the diff, then discards the branch.
    cloud.send('WORKSPACE_COMMAND', {
      requestId: 'r1',
      taskId: 'w1',
      projectId: 'p1',
      localPath: repo,
      action: 'show_diff',
    });
    const diff = (await cloud.waitFor('WORKSPACE_RESULT', (p) => p.requestId === 'r1')).payload;
    expect(diff).toMatchObject({ code: 'DIFF', branch: 'bematic/w1', truncated: false });
    expect(diff.patch).toContain('+one');
    cloud.send('WORKSPACE_COMMAND', {
      requestId: 'r2',
      taskId: 'w1',
      projectId: 'p1',
      localPath: repo,
      action: 'discard',
    });
    expect((await cloud.waitFor('WORKSPACE_RESULT', (p) => p.requestId === 'r2')).payload).toMatchObject({
      code: 'DISCARDED',
    });
    expect(git('branch', '--list', 'bematic/w1')).toBe('');
    cloud.send('WORKSPACE_COMMAND', {
      requestId: 'r3',
      taskId: 'w1',
      projectId: 'p1',
      localPath: outside,
      action: 'discard',
    });
    expect((await cloud.waitFor('WORKSPACE_RESULT', (p) => p.requestId === 'r3')).payload).toMatchObject({
      code: 'PATH_NOT_ALLOWED',
    });
  });

  it('prunes worktree directories no repository knows when it starts', async () => {
    const stale = path.join(root, '..', 'worktrees', 'task_left_by_a_crash');
    mkdirSync(stale, { recursive: true });
    writeFileSync(path.join(stale, 'half.ts'), 'x\n');
    await setup({ executor: new ManualExecutor() });
    expect(existsSync(stale)).toBe(false);
  });

  it('a base that is not a commit ends the task with WORKSPACE_FAILED and a clear reason', async () => {
    const repo = dir('repo-bad-base');
    execFileSync('git', ['init', '-q'], { cwd: repo });
    execFileSync(
      'git',
      ['-c', 'user.name=d', '-c', 'user.email=d@e', 'commit', '-q', '--allow-empty', '-m', 'i'],
      {
        cwd: repo,
      },
    );
    const { cloud } = await setup({ executor: new ManualExecutor() });
    cloud.submit({ taskId: 'b1', localPath: repo, allowedTools: ['Edit'], workspace: { base: 'nope' } });
    const error = (await cloud.waitFor('TASK_ERROR', (p) => p.taskId === 'b1')).payload;
    expect(error).toMatchObject({ errorCode: 'WORKSPACE_FAILED', recoverable: false });
    expect(error.error).toContain('`nope` is not a commit');
  });

  it('starts queued tasks by priority, FIFO within a priority', async () => {
    const executor = new ManualExecutor();
    const { cloud } = await setup({ executor, max: 1 });
    cloud.submit({ taskId: 'first', localPath: dir('q0') });
    await executor.started('first');
    const order: Array<[string, TaskPriority]> = [
      ['low1', 'low'],
      ['normal1', 'normal'],
      ['urgent1', 'urgent'],
      ['high1', 'high'],
      ['normal2', 'normal'],
      ['urgent2', 'urgent'],
    ];
    for (const [id, priority] of order) cloud.submit({ taskId: id, localPath: dir(id), priority });
    await cloud.waitFor('TASK_ACK', (p) => p.taskId === 'urgent2');
    let current = 'first';
    for (const next of ['urgent1', 'urgent2', 'high1', 'normal1', 'normal2', 'low1']) {
      executor.complete(current);
      await executor.started(next);
      current = next;
    }
    expect(executor.startOrder).toEqual([
      'first',
      'urgent1',
      'urgent2',
      'high1',
      'normal1',
      'normal2',
      'low1',
    ]);
  });

  it('cancels a queued task without running it', async () => {
    const executor = new ManualExecutor();
    const { cloud } = await setup({ executor, max: 1 });
    cloud.submit({ taskId: 'run', localPath: dir('c1') });
    cloud.submit({ taskId: 'wait', localPath: dir('c2') });
    await cloud.waitFor('TASK_ACK', (p) => p.taskId === 'wait');
    cloud.send('TASK_CANCEL', { taskId: 'wait', attempt: 1, reason: 'user asked' });
    const cancelled = await cloud.waitFor('TASK_CANCELLED');
    expect(cancelled.payload).toEqual({ taskId: 'wait', attempt: 1, reason: 'user asked' });
    executor.complete('run');
    await cloud.waitFor('TASK_COMPLETE');
    await cloud.sync();
    expect(executor.startOrder).toEqual(['run']);
  });

  it.each([
    ['resolves cancelled', 'cancel' as const, 'partial'],
    ['reports a failure after the abort', 'fail-late' as const, 'streamed so far'],
  ])('cancels a running task exactly once when the executor %s', async (_label, mode, partial) => {
    const executor = new ManualExecutor(mode);
    const { cloud } = await setup({ executor });
    cloud.submit({ taskId: 't1', localPath: dir('cr') });
    const run = await executor.started('t1');
    run.sink.stream('streamed so far');
    cloud.send('TASK_CANCEL', { taskId: 't1', attempt: 1, reason: 'stop' });
    cloud.send('TASK_CANCEL', { taskId: 't1', attempt: 1, reason: 'stop again' });
    const cancelled = await cloud.waitFor('TASK_CANCELLED');
    expect(cancelled.payload).toMatchObject({ taskId: 't1', reason: 'stop', partialResult: partial });
    expect(run.signal.aborted).toBe(true);
    await cloud.sync();
    expect(cloud.ofType('TASK_CANCELLED', 't1')).toHaveLength(1);
    expect(cloud.ofType('TASK_ERROR', 't1')).toHaveLength(0);
    expect(cloud.ofType('TASK_COMPLETE', 't1')).toHaveLength(0);
  });

  it('turns a throwing executor into TASK_ERROR EXECUTION_FAILED and a failed outcome into TASK_ERROR', async () => {
    const { cloud } = await setup();
    cloud.submit({ taskId: 'throws', localPath: dir('x1'), prompt: 'do [throw]' });
    cloud.submit({ taskId: 'fails', localPath: dir('x2'), prompt: 'do [fail]' });
    const thrown = await cloud.waitFor('TASK_ERROR', (p) => p.taskId === 'throws');
    expect(thrown.payload).toMatchObject({ errorCode: 'EXECUTION_FAILED', recoverable: false });
    expect(thrown.payload.error).toMatch(/told to throw/);
    const failed = await cloud.waitFor('TASK_ERROR', (p) => p.taskId === 'fails');
    expect(failed.payload.error).toMatch(/told to fail/);
  });

  it('refuses work while overloaded and announces overload and recovery', async () => {
    const { cloud, monitor, sample } = await setup();
    sample.cpuPercent = 99;
    monitor.sample();
    const status = await cloud.waitFor('AGENT_STATUS', (p) => p.overloaded);
    expect(status.payload).toMatchObject({ overloaded: true, maxConcurrentTasks: 3 });
    expect(status.payload.reason).toMatch(/CPU 99%/);

    cloud.submit({ taskId: 't1', localPath: dir('o1') });
    const refused = await cloud.waitFor('TASK_ACK', (p) => p.taskId === 't1');
    expect(refused.payload).toMatchObject({ accepted: false, queued: false });
    expect(refused.payload.reason).toMatch(/^agent overloaded: CPU 99%/);

    sample.cpuPercent = 10;
    monitor.sample();
    monitor.sample();
    const recovered = await cloud.waitFor('AGENT_STATUS', (p) => !p.overloaded);
    expect(recovered.payload.metrics.cpuPercent).toBe(10);

    cloud.submit({ taskId: 't1', localPath: dir('o1') });
    await cloud.waitFor('TASK_COMPLETE', (p) => p.taskId === 't1');
  });

  it('delivers a result produced while the cloud was away exactly once after reconnecting', async () => {
    const executor = new ManualExecutor();
    const { cloud, agent } = await setup({ executor });
    cloud.submit({ taskId: 't1', localPath: dir('away') });
    await executor.started('t1');
    const disconnected = once(agent, 'disconnected');
    cloud.goOffline();
    await disconnected;
    const finished = once(agent, 'task-finished');
    executor.complete('t1', 'finished offline');
    await finished;
    expect(agent.outbound.bufferedTaskIds()).toEqual(['t1']);

    const reauthed = once(agent, 'authenticated');
    cloud.goOnline();
    await reauthed;
    expect(cloud.authRequests.at(-1)?.bufferedTaskIds).toEqual(['t1']);
    const complete = await cloud.waitFor('TASK_COMPLETE');
    expect(complete.payload.result).toBe('finished offline');
    expect(complete.connection).toBeGreaterThan(1);
    await cloud.sync();
    expect(cloud.ofType('TASK_COMPLETE', 't1')).toHaveLength(1);
    expect(agent.outbound.size).toBe(0);
  });

  it('keeps a written result until TASK_RESULT_ACK, resends it after a reconnect, and drops it on the ack', async () => {
    const executor = new ManualExecutor();
    const { cloud, agent } = await setup({ executor, cloud: { ackResults: false } });
    cloud.submit({ taskId: 't1', localPath: dir('unacked') });
    await executor.started('t1');
    executor.complete('t1', 'written once');
    const first = await cloud.waitFor('TASK_COMPLETE');
    await cloud.sync();
    // The socket write returned, but the cloud has not committed it (no ack): the agent still holds it.
    expect(agent.outbound.bufferedTaskIds()).toEqual(['t1']);

    const reauthed = once(agent, 'authenticated');
    cloud.goOffline();
    cloud.goOnline();
    await reauthed;
    expect(cloud.authRequests.at(-1)?.bufferedTaskIds).toEqual(['t1']);
    await cloud.sync(); // the resend goes out on authentication, before the pong
    const again = cloud.ofType('TASK_COMPLETE', 't1').find((m) => m.connection > first.connection);
    expect(again?.payload).toMatchObject({ taskId: 't1', attempt: 1, result: 'written once' });
    expect(again?.id).toBe(first.id); // the same message, not a second result

    cloud.send('TASK_RESULT_ACK', { taskId: 't1', attempt: 1 });
    await agent.outbound.whenEmpty();
    expect(agent.outbound.bufferedTaskIds()).toEqual([]);
    const reauthedAgain = once(agent, 'authenticated');
    cloud.goOffline();
    cloud.goOnline();
    await reauthedAgain;
    await cloud.sync();
    expect(cloud.ofType('TASK_COMPLETE', 't1')).toHaveLength(2);
  });

  it('adopts a newer attempt of a task it already finished: answers DUPLICATE and resends the result under it', async () => {
    const executor = new ManualExecutor();
    const { cloud } = await setup({ executor, cloud: { ackResults: false } });
    cloud.submit({ taskId: 't1', localPath: dir('resent') });
    await executor.started('t1');
    executor.complete('t1', 'done');
    await cloud.waitFor('TASK_COMPLETE', (p) => p.attempt === 1);
    cloud.submit({ taskId: 't1', localPath: dir('resent'), attempt: 2 });
    const duplicate = await cloud.waitFor('TASK_ACK', (p) => p.attempt === 2);
    expect(duplicate.payload).toMatchObject({ accepted: false, code: 'DUPLICATE' });
    const restamped = await cloud.waitFor('TASK_COMPLETE', (p) => p.attempt === 2);
    expect(restamped.payload.result).toBe('done');
    expect(executor.startOrder).toEqual(['t1']); // never run twice
  });

  it('keeps an undelivered result on disk across an agent restart', async () => {
    const stateDir = path.join(base, `state-${Date.now()}`);
    const executor = new ManualExecutor();
    const first = await setup({ executor, stateDir });
    const { cloud } = first;
    cloud.submit({ taskId: 'persisted', localPath: dir('persist') });
    await executor.started('persisted');
    const disconnected = once(first.agent, 'disconnected');
    cloud.goOffline();
    await disconnected;
    const finished = once(first.agent, 'task-finished');
    executor.complete('persisted', 'survived');
    await finished;
    await first.agent.stop({ graceful: false });

    cloud.goOnline();
    await setup({ existingCloud: cloud, stateDir });
    expect(cloud.authRequests.at(-1)?.bufferedTaskIds).toEqual(['persisted']);
    const complete = await cloud.waitFor('TASK_COMPLETE');
    expect(complete.payload.result).toBe('survived');
    await cloud.sync();
    expect(cloud.ofType('TASK_COMPLETE')).toHaveLength(1);
  });

  it('answers garbage frames with SYSTEM_ERROR and keeps working on the same connection', async () => {
    const { cloud } = await setup();
    cloud.sendRaw('{not json');
    expect((await cloud.waitFor('SYSTEM_ERROR', (p) => p.code === 'INVALID_JSON')).payload.code).toBe(
      'INVALID_JSON',
    );
    cloud.sendRaw(
      JSON.stringify({ v: PROTOCOL_VERSION, type: 'DROP_TABLES', id: 'bad-1', ts: 1, payload: {} }),
    );
    const unknown = await cloud.waitFor('SYSTEM_ERROR', (p) => p.code === 'UNKNOWN_TYPE');
    expect(unknown.payload.refId).toBe('bad-1');
    cloud.sendRaw(
      JSON.stringify({
        v: PROTOCOL_VERSION,
        type: 'TASK_SUBMIT',
        id: 'bad-2',
        ts: 1,
        payload: { taskId: 'x' },
      }),
    );
    await cloud.waitFor('SYSTEM_ERROR', (p) => p.code === 'INVALID_PAYLOAD' && p.refId === 'bad-2');
    const ack = cloud.send('TASK_ACK', { taskId: 'x', attempt: 1, accepted: true, queued: false });
    await cloud.waitFor('SYSTEM_ERROR', (p) => p.code === 'UNEXPECTED_TYPE' && p.refId === ack.id);

    cloud.submit({ taskId: 't1', localPath: dir('g') });
    await cloud.waitFor('TASK_COMPLETE');
    expect(cloud.connections).toBe(1);
  });

  it('refuses a task whose path is outside the allowed roots', async () => {
    const executor = new ManualExecutor();
    const { cloud } = await setup({ executor });
    cloud.submit({ taskId: 'evil', localPath: outside });
    cloud.submit({ taskId: 'escape', localPath: `${root}/../outside` });
    for (const taskId of ['evil', 'escape']) {
      const error = await cloud.waitFor('TASK_ERROR', (p) => p.taskId === taskId);
      expect(error.payload).toMatchObject({ errorCode: 'PATH_NOT_ALLOWED', recoverable: false });
      expect(cloud.ofType('TASK_ACK', taskId)[0]?.payload).toMatchObject({ accepted: false, queued: false });
    }
    expect(executor.startOrder).toEqual([]);
  });

  it('cancels tasks the cloud gave up on while the agent was away', async () => {
    const executor = new ManualExecutor();
    const { cloud, agent } = await setup({ executor });
    cloud.submit({ taskId: 'stale', localPath: dir('stale') });
    await executor.started('stale');
    cloud.options.cancelTaskIds = ['stale'];
    const reauthed = once(agent, 'authenticated');
    cloud.goOffline();
    cloud.goOnline();
    await reauthed;
    expect(cloud.authRequests.at(-1)?.activeTaskIds).toEqual(['stale']);
    const cancelled = await cloud.waitFor('TASK_CANCELLED');
    expect(cancelled.payload.taskId).toBe('stale');
  });

  it('cut off for nearly the reconnect grace the cloud announced, stops its runs before the cloud gives them up', async () => {
    const clock = new ManualClock();
    const executor = new ManualExecutor();
    const grace = 60_000;
    const { cloud, agent } = await setup({ executor, clock, max: 1, cloud: { reconnectGraceMs: grace } });
    const stopAfter = partitionStopAfterMs(grace);
    expect(stopAfter).toBe(50_000);
    cloud.submit({ taskId: 'run', localPath: dir('cut-run') });
    cloud.submit({ taskId: 'wait', localPath: dir('cut-run') }); // one slot: queued behind 'run'
    const run = await executor.started('run');
    await cloud.waitFor('TASK_ACK', (p) => p.taskId === 'wait');
    await clock.advance(1_000); // the cloud's last frame was 1 s before the link broke
    const disconnected = once(agent, 'disconnected');
    cloud.goOffline();
    await disconnected;

    await clock.advance(stopAfter - 1_000 - 1);
    expect(run.signal.aborted).toBe(false);
    const abandoned = once(agent, 'runs-abandoned');
    await clock.advance(1);
    const [{ taskIds }] = await abandoned;
    expect(run.signal.aborted).toBe(true);
    expect(taskIds.sort()).toEqual(['run', 'wait']);
    expect(agent.queue.activeTaskIds()).toEqual([]);
    expect(executor.startOrder).toEqual(['run']); // the queued one never starts

    const reauthed = once(agent, 'authenticated');
    cloud.goOnline();
    await reconnectOn(clock, agent);
    await reauthed;
    expect(cloud.authRequests.at(-1)?.activeTaskIds).toEqual([]);
    expect(cloud.authRequests.at(-1)?.bufferedTaskIds.sort()).toEqual(['run', 'wait']);
    const lost = await cloud.waitFor('TASK_ERROR', (p) => p.taskId === 'run');
    expect(lost.payload).toMatchObject({ errorCode: 'AGENT_LOST', recoverable: true, attempt: 1 });
    expect(lost.connection).toBeGreaterThan(1);
    await cloud.waitFor('TASK_ERROR', (p) => p.taskId === 'wait');
  });

  it('back before the deadline, or never told a grace, keeps its runs going', async () => {
    for (const reconnectGraceMs of [60_000, undefined]) {
      const clock = new ManualClock();
      const executor = new ManualExecutor();
      const { cloud, agent } = await setup({
        executor,
        clock,
        cloud: reconnectGraceMs === undefined ? {} : { reconnectGraceMs },
      });
      cloud.submit({ taskId: 'keep', localPath: dir('cut-keep') });
      const run = await executor.started('keep');
      const disconnected = once(agent, 'disconnected');
      cloud.goOffline();
      await disconnected;
      await clock.advance(partitionStopAfterMs(60_000) - 10_000); // reconnecting moves the clock on too
      const reauthed = once(agent, 'authenticated');
      cloud.goOnline();
      await reconnectOn(clock, agent);
      await reauthed;
      await clock.advance(15_000); // past the old deadline (and short of the keepalive): the reconnect disarmed it
      expect(run.signal.aborted).toBe(false);
      expect(cloud.authRequests.at(-1)?.activeTaskIds).toEqual(['keep']);
      executor.complete('keep');
      await cloud.waitFor('TASK_COMPLETE', (p) => p.taskId === 'keep');
      await agent.stop({ graceful: false });
      await cloud.close();
    }
  });

  it('reports a task that exceeds its timeoutMs as a recoverable TIMEOUT error', async () => {
    const executor = new ManualExecutor();
    const { cloud } = await setup({ executor });
    cloud.submit({ taskId: 'slow', localPath: dir('slow'), timeoutMs: 20 });
    const error = await cloud.waitFor('TASK_ERROR', (p) => p.taskId === 'slow');
    expect(error.payload).toMatchObject({ errorCode: 'TIMEOUT', recoverable: true });
    expect((await executor.started('slow')).signal.aborted).toBe(true);
  });

  it('a graceful stop lets the running task finish and deliver its result first', async () => {
    const executor = new ManualExecutor();
    const { cloud, agent } = await setup({ executor });
    cloud.submit({ taskId: 'last', localPath: dir('last') });
    await executor.started('last');
    const stopped = agent.stop({ graceful: true });
    cloud.submit({ taskId: 'late', localPath: dir('late') });
    await cloud.waitFor('TASK_ACK', (p) => p.taskId === 'late');
    expect(cloud.ofType('TASK_ACK', 'late')[0]?.payload).toMatchObject({ accepted: false });
    executor.complete('last');
    await stopped;
    expect(cloud.ofType('TASK_COMPLETE', 'last')).toHaveLength(1);
    expect(executor.startOrder).toEqual(['last']);
  });

  it('a graceful stop waits at most the shutdown grace, then stops the run (AGENT_LOST) and ends', async () => {
    const clock = new ManualClock();
    const executor = new ManualExecutor();
    const { cloud, agent } = await setup({ executor, clock, shutdownGraceMs: 30_000 });
    cloud.submit({ taskId: 'endless', localPath: dir('endless') });
    const run = await executor.started('endless');
    const expired = once(agent, 'shutdown-grace-expired');
    const stopped = agent.stop({ graceful: true });
    await clock.advance(29_999);
    expect(run.signal.aborted).toBe(false);
    await clock.advance(1);
    expect((await expired)[0]).toEqual({ taskIds: ['endless'] });
    expect(run.signal.aborted).toBe(true);
    const error = await cloud.waitFor('TASK_ERROR', (p) => p.taskId === 'endless');
    expect(error.payload).toMatchObject({ errorCode: 'AGENT_LOST', recoverable: true });
    await stopped;
  });
});

process.on('exit', () => rmSync(base, { recursive: true, force: true }));
