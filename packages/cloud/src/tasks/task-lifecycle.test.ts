import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteRepos } from '../../test/support/conversation.js';
import type { NewTask, Repositories } from '../db/repositories/types.js';
import { type TaskEventName, TaskEvents } from './task-events.js';
import { TaskLifecycle } from './task-lifecycle.js';

describe('TaskLifecycle, the one door for task state (real SQLite)', () => {
  let env: Awaited<ReturnType<typeof sqliteRepos>>;
  let repos: Repositories;
  let lifecycle: TaskLifecycle;
  let seen: string[];
  let newTask: NewTask;

  beforeEach(async () => {
    env = await sqliteRepos();
    repos = env.repos;
    const events = new TaskEvents();
    seen = [];
    for (const name of ['task.created', 'task.failed', 'task.cancelled'] as TaskEventName[]) {
      events.on(name, (p) => void seen.push(`${name}:${'task' in p ? p.task.status : ''}`));
    }
    lifecycle = new TaskLifecycle({ repos, events, logger: pino({ level: 'silent' }), now: () => 5_000 });
    const project = await repos.projects.create({
      name: 'web',
      channelId: 'C1',
      agentId: 'agent-1',
      localPath: '/srv/web',
      defaultModel: null,
      maxBudgetUsd: null,
    });
    newTask = {
      projectId: project.id,
      agentId: 'agent-1',
      botName: 'coder',
      command: 'fix',
      prompt: 'fix it',
      model: 'claude-sonnet-4-5',
      priority: 'normal',
      userId: 'U1',
      channelId: 'C1',
      submission: {
        taskId: 'x',
        projectId: project.id,
        botName: 'coder',
        command: 'fix',
        prompt: 'fix it',
        systemPrompt: '',
        model: 'claude-sonnet-4-5',
        priority: 'normal',
        localPath: '/srv/web',
        allowedTools: [],
      },
      // Whatever a caller says, a new task starts pending.
      status: 'running',
    };
  });
  afterEach(async () => {
    await env.cleanup();
  });

  it('create records a pending task with its audit entry and announces it once', async () => {
    const task = await lifecycle.create(newTask, { actor: 'U1', details: { bot: 'coder' } });
    expect((await repos.tasks.findById(task.id))?.status).toBe('pending');
    const audited = await repos.audit.list({ action: 'task.created', resourceId: task.id });
    expect(audited).toMatchObject([{ actor: 'U1', details: { bot: 'coder' } }]);
    expect(seen).toEqual(['task.created:pending']);
  });

  it('a cloud-decided cancel applies once; a later failure of the same task is refused', async () => {
    const task = await lifecycle.create(newTask, { actor: 'U1', details: {} });
    expect((await lifecycle.cancel(task.id, 'Cancelled by Ann', 'U1')).kind).toBe('applied');
    expect((await lifecycle.cancel(task.id, 'Cancelled by Ann', 'U1')).kind).toBe('duplicate');
    const late = await lifecycle.fail(task.id, {
      errorCode: 'EXECUTION_FAILED',
      error: 'too late',
      recoverable: true,
    });
    expect(late.kind).toBe('ignored');
    expect(await repos.tasks.findById(task.id)).toMatchObject({ status: 'cancelled', completedAt: 5_000 });
    expect(seen).toEqual(['task.created:pending', 'task.cancelled:cancelled']);
  });
});
