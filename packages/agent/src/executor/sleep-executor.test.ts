import type { TaskSubmit } from '@bematic/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ExecutionSink } from './executor.js';
import { SleepExecutor } from './sleep-executor.js';

const task = (prompt: string): TaskSubmit => ({
  taskId: 't1',
  attempt: 1,
  projectId: 'p1',
  localPath: '/tmp',
  botName: 'coder',
  command: 'fix',
  prompt,
  systemPrompt: '',
  model: 'm',
  allowedTools: [],
  priority: 'normal',
});

function recordingSink() {
  const events: string[] = [];
  const sink: ExecutionSink = {
    progress: (p) => events.push(`progress:${p.message}`),
    stream: (t) => events.push(`stream:${t}`),
  };
  return { events, sink };
}

describe('SleepExecutor', () => {
  afterEach(() => vi.useRealTimers());

  it('reports a step, streams text and completes after its duration', async () => {
    vi.useFakeTimers();
    const { events, sink } = recordingSink();
    let settled = false;
    const p = new SleepExecutor({ durationMs: 1000 }).execute(
      task('hello'),
      sink,
      new AbortController().signal,
    );
    void p.then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await p).toMatchObject({ kind: 'completed', payload: { result: 'Slept 1000 ms' } });
    expect(events).toEqual(['progress:Sleeping 1000 ms', 'stream:Working on: hello\n']);
  });

  it('resolves cancelled with the partial text as soon as the signal aborts', async () => {
    const controller = new AbortController();
    const p = new SleepExecutor({ durationMs: 3_600_000 }).execute(
      task('long'),
      recordingSink().sink,
      controller.signal,
    );
    controller.abort();
    expect(await p).toMatchObject({ kind: 'cancelled', payload: { partialResult: 'Working on: long\n' } });
  });

  it('fails for prompts with the fail marker, rejects for the throw marker, honours [sleep:N]', async () => {
    const ex = new SleepExecutor({ durationMs: 3_600_000 });
    const signal = new AbortController().signal;
    expect(await ex.execute(task('x [fail] [sleep:0]'), recordingSink().sink, signal)).toMatchObject({
      kind: 'failed',
      payload: { errorCode: 'EXECUTION_FAILED' },
    });
    await expect(ex.execute(task('x [throw]'), recordingSink().sink, signal)).rejects.toThrow(/throw/);
  });
});
