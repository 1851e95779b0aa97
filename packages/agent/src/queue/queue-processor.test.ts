import type { MessageType, PayloadOf, TaskSubmit } from '@bematic/protocol';
import { describe, expect, it } from 'vitest';
import { ManualExecutor } from '../../test/support/manual-executor.js';
import type { PathValidation } from '../security/path-validator.js';
import { QueueProcessor } from './queue-processor.js';

const task = (
  taskId: string,
  localPath: string,
  priority: TaskSubmit['priority'] = 'normal',
): TaskSubmit => ({
  taskId,
  attempt: 1,
  projectId: 'p',
  localPath,
  botName: 'coder',
  command: 'fix',
  prompt: 'x',
  systemPrompt: '',
  model: 'm',
  allowedTools: [],
  priority,
});

describe('QueueProcessor admission order', () => {
  it('admits tasks in arrival order even when their path checks finish out of order', async () => {
    const checks = new Map<string, (v: PathValidation) => void>();
    const acks: Array<PayloadOf<'TASK_ACK'>> = [];
    const executor = new ManualExecutor();
    const queue = new QueueProcessor({
      executor,
      maxConcurrentTasks: 1,
      validatePath: (p) => new Promise((resolve) => checks.set(p, resolve)),
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
        if (type === 'TASK_ACK') acks.push(payload as PayloadOf<'TASK_ACK'>);
      },
    });
    const first = queue.submit(task('first', '/a'));
    const second = queue.submit(task('second', '/b'));
    // The second path check finishes first; the first task must still be the one that starts.
    checks.get('/b')!({ ok: true, realPath: '/b' });
    await Promise.resolve();
    checks.get('/a')!({ ok: true, realPath: '/a' });
    await Promise.all([first, second]);
    expect(acks.map((a) => [a.taskId, a.queued])).toEqual([
      ['first', false],
      ['second', true],
    ]);
    await executor.started('first');
    expect(executor.startOrder).toEqual(['first']);
  });
});
