import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessageType, PayloadOf, TaskSubmit } from '@bematic/protocol';
import { ManualClock, type ScriptedModelServer, startScriptedModelServer, turn } from '@bematic/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualExecutor } from '../../test/support/manual-executor.js';
import { ClaudeExecutor } from '../executor/claude/claude-executor.js';
import type { Executor } from '../executor/executor.js';
import { QueueProcessor } from './queue-processor.js';

const dirs: string[] = [];
let server: ScriptedModelServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bematic-timeout-'));
  dirs.push(d);
  return d;
}

const task = (taskId: string, localPath: string, over: Partial<TaskSubmit> = {}): TaskSubmit => ({
  taskId,
  projectId: 'p',
  localPath,
  botName: 'coder',
  command: 'fix',
  prompt: 'x',
  systemPrompt: '',
  model: 'claude-sonnet-4-5',
  allowedTools: ['Read'],
  priority: 'normal',
  attempt: 1,
  ...over,
});

type Sent = { type: MessageType; payload: unknown };

function queueWith(executor: Executor, taskTimeoutMs: number | undefined) {
  const clock = new ManualClock();
  const sent: Sent[] = [];
  const waiters: Array<() => void> = [];
  const queue = new QueueProcessor({
    executor,
    maxConcurrentTasks: 2,
    ...(taskTimeoutMs !== undefined && { taskTimeoutMs }),
    validatePath: async (p) => ({ ok: true, realPath: p }),
    resources: {
      isOverloaded: () => false,
      reason: () => undefined,
      metrics: () => ({
        cpuPercent: 1,
        memoryPercent: 1,
        rssMb: 1,
        loadAvg1m: 0,
        activeTasks: 0,
        queuedTasks: 0,
      }),
    },
    emit: <T extends MessageType>(type: T, payload: PayloadOf<T>) => {
      sent.push({ type, payload });
      for (const w of waiters.splice(0)) w();
    },
    clock,
  });
  const terminal = (taskId: string) => {
    const find = () =>
      sent.find(
        (m) =>
          ['TASK_COMPLETE', 'TASK_ERROR', 'TASK_CANCELLED'].includes(m.type) &&
          (m.payload as { taskId: string }).taskId === taskId,
      );
    return new Promise<Sent>((resolve) => {
      const check = () => {
        const hit = find();
        if (hit) resolve(hit);
        else waiters.push(check);
      };
      check();
    });
  };
  const finished = (taskId: string) =>
    new Promise<void>((resolve) =>
      queue.on('task-finished', (e) => {
        if (e.taskId === taskId) resolve();
      }),
    );
  return { queue, clock, sent, terminal, finished };
}

describe('task time limit: one timer, in the queue processor, on the injected clock', () => {
  it('applies the agent-wide limit to a task that sets none, to the millisecond, and leaves no timer behind', async () => {
    const executor = new ManualExecutor();
    const { queue, clock, terminal, finished } = queueWith(executor, 60_000);
    await queue.submit(task('t1', '/a'));
    const run = await executor.started('t1');

    await clock.advance(59_999);
    expect(run.signal.aborted).toBe(false);
    const done = finished('t1');
    await clock.advance(1);
    expect(run.signal.aborted).toBe(true);
    expect((await terminal('t1')).payload).toMatchObject({ errorCode: 'TIMEOUT', recoverable: true });
    await done;
    expect(clock.pendingTimers).toBe(0);
  });

  it("a task's own timeoutMs wins over the agent-wide limit; without either there is no limit", async () => {
    const executor = new ManualExecutor();
    const limited = queueWith(executor, 60_000);
    await limited.queue.submit(task('own', '/a', { timeoutMs: 5_000 }));
    await executor.started('own');
    await limited.clock.advance(5_000);
    expect((await limited.terminal('own')).payload).toMatchObject({ errorCode: 'TIMEOUT' });

    const unlimited = queueWith(new ManualExecutor(), undefined);
    await unlimited.queue.submit(task('free', '/b'));
    await unlimited.clock.advance(7 * 24 * 3_600_000);
    expect(unlimited.sent.map((m) => m.type)).not.toContain('TASK_ERROR');
  });

  it('stops the real Claude Code when the limit passes, and reports TIMEOUT, not a cancellation', async () => {
    server = await startScriptedModelServer({ script: [turn.text('too slow', { delayMs: 60_000 })] });
    const pids: number[] = [];
    const executor = new ClaudeExecutor({
      apiKey: 'sk-ant-test',
      baseUrl: server.url,
      home: tempDir(),
      maxRetries: 0,
      onSpawn: (pid) => pids.push(pid),
    });
    const { queue, clock, terminal } = queueWith(executor, 60_000);
    await queue.submit(task('slow', tempDir()));
    await server.waitForRequest((r) => r.turnIndex === 0);

    await clock.advance(60_000);

    const error = await terminal('slow');
    expect(error.type).toBe('TASK_ERROR');
    expect(error.payload).toMatchObject({ errorCode: 'TIMEOUT', recoverable: true });
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
