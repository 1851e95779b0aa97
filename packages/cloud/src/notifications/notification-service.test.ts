import type { TaskComplete, TaskProgress, TaskSubmission } from '@bematic/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RecordingSurface, sqliteRepos, textOf } from '../../test/support/conversation.js';
import { BotRegistry } from '../bots/bot-registry.js';
import type { Repositories, Task } from '../db/repositories/types.js';
import { TaskEvents } from '../tasks/task-events.js';
import { NotificationService } from './notification-service.js';
import { StartedPosts } from './started-posts.js';
import type { TaskMessageRedraw } from './task-message-owner.js';

describe('NotificationService', () => {
  let env: Awaited<ReturnType<typeof sqliteRepos>>;
  let repos: Repositories;
  let surface: RecordingSurface;
  let events: TaskEvents;
  let svc: NotificationService;
  let task: Task;

  beforeEach(async () => {
    env = await sqliteRepos();
    repos = env.repos;
    surface = new RecordingSurface();
    events = new TaskEvents();
    const project = await repos.projects.create({
      name: 'web',
      channelId: 'C1',
      agentId: 'agent-1',
      localPath: '/srv',
      defaultModel: null,
      maxBudgetUsd: null,
    });
    const submission: TaskSubmission = {
      taskId: 'task_n1',
      projectId: project.id,
      localPath: '/srv',
      botName: 'coder',
      command: 'fix',
      prompt: 'fix it',
      systemPrompt: 's',
      model: 'claude-opus-4-1',
      allowedTools: ['Read'],
      priority: 'normal',
    };
    task = await repos.tasks.create({
      id: 'task_n1',
      projectId: project.id,
      agentId: 'agent-1',
      botName: 'coder',
      command: 'fix',
      prompt: 'fix it',
      model: 'claude-opus-4-1',
      priority: 'normal',
      userId: 'U1',
      channelId: 'C1',
      threadTs: '100.1',
      messageTs: '100.1',
      submission,
    });
    const started = await surface.post('C1', { text: 'Task started' }, '100.1');
    task = await repos.tasks.update(task.id, { progressMessageTs: started.ts });
    vi.useFakeTimers({ now: 5_000_000, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    svc = new NotificationService({
      events,
      tasks: repos.tasks,
      bots: new BotRegistry(),
      surfaceFor: () => surface,
      refreshMs: 0,
    }).start();
  });
  afterEach(async () => {
    svc.stop();
    vi.useRealTimers();
    await env.cleanup();
  });

  it('coalesces progress into the one progress message, which becomes the completion block, and swaps reactions', async () => {
    events.emit('task.started', { task });
    for (let i = 0; i < 20; i++) {
      events.emit('task.progress', {
        task,
        progress: { taskId: task.id, attempt: 1, kind: 'tool', message: `Editing file ${i}` },
      });
      events.emit('task.stream', { task, text: `line ${i}\n` });
      await vi.advanceTimersByTimeAsync(250);
    }
    await vi.advanceTimersByTimeAsync(3000);
    expect(surface.updates.length).toBeGreaterThanOrEqual(1);
    expect(surface.updates.length).toBeLessThanOrEqual(3);
    expect(new Set(surface.updates.map((u) => u.ts))).toEqual(new Set([task.progressMessageTs]));
    expect(textOf(surface.updates.at(-1)!.message)).toContain('Editing file 19');
    // The plain-text fallback carries the step and the elapsed time, not just the status.
    expect(surface.updates.at(-1)!.message.text).toContain('Editing file 19');
    expect(surface.updates.at(-1)!.message.text).toMatch(/Elapsed \d/);
    expect(textOf(surface.updates.at(-1)!.message)).toContain('line 19');

    const message: TaskComplete = {
      taskId: task.id,
      attempt: 1,
      result: '**Fixed** the bug in `auth.ts`',
      filesChanged: ['src/auth.ts'],
      commandsRun: ['npm test'],
      metrics: {
        inputTokens: 1200,
        outputTokens: 300,
        cacheReadTokens: 50,
        cacheCreationTokens: 0,
        costUsd: 0.42,
        durationMs: 65_000,
        numTurns: 4,
        continuations: 0,
      },
    };
    await repos.tasks.transition(task.id, 'submitted');
    const done = (await repos.tasks.transition(task.id, 'completed', { completedAt: Date.now() })).task;
    events.emit('task.completed', { task: done, message });
    await vi.advanceTimersByTimeAsync(5000);
    await svc.idle();
    // The outcome replaces the progress message in place: no second bot message in the thread.
    expect(surface.posts).toHaveLength(1);
    const final = surface.updates.at(-1)!;
    expect(final.ts).toBe(task.progressMessageTs);
    const text = textOf(final.message);
    expect(text).toContain('Task completed');
    expect(text).toContain('*Fixed* the bug');
    expect(text).toContain('$0.42');
    expect(text).toContain('1m 05s');
    expect(text).toContain('src/auth.ts');
    expect(text).not.toContain('task_cancel');
    expect(surface.reactions).toEqual([
      { op: 'remove', ts: '100.1', name: 'eyes' },
      { op: 'add', ts: '100.1', name: 'white_check_mark' },
    ]);
  });

  it('waits for a "Task started" post still on its way instead of posting a second message', async () => {
    svc.stop();
    const startedPosts = new StartedPosts();
    svc = new NotificationService({
      events,
      tasks: repos.tasks,
      bots: new BotRegistry(),
      surfaceFor: () => surface,
      refreshMs: 0,
      startedPosts,
    }).start();
    const bare = await repos.tasks.update(task.id, { progressMessageTs: null });
    let land: () => void = () => {};
    const launcherPost = startedPosts.hold(
      task.id,
      new Promise<void>((resolve) => {
        land = resolve;
      }).then(async () => {
        const posted = await surface.post('C1', { text: 'Task started' }, '100.1');
        return repos.tasks.update(task.id, { progressMessageTs: posted.ts });
      }),
    );
    events.emit('task.started', { task: bare });
    events.emit('task.progress', {
      task: bare,
      progress: { taskId: task.id, attempt: 1, kind: 'tool', message: 'Editing a file' },
    });
    await vi.advanceTimersByTimeAsync(5000);
    expect(surface.posts).toHaveLength(1); // the one from beforeEach; the service did not post its own
    land();
    const landed = await launcherPost;
    await vi.advanceTimersByTimeAsync(5000);
    await svc.idle();
    expect(surface.posts).toHaveLength(2);
    expect(surface.updates.map((u) => u.ts)).toContain(landed.progressMessageTs);
    expect(new Set(surface.updates.map((u) => u.ts))).toEqual(new Set([landed.progressMessageTs]));
  });

  describe('on a database shared by several instances', () => {
    /** The task as another instance launched it: its "Task started" post is not recorded yet. */
    const launchedElsewhere = async () => {
      svc.stop();
      vi.setSystemTime(task.createdAt);
      svc = new NotificationService({
        events,
        tasks: repos.tasks,
        bots: new BotRegistry(),
        surfaceFor: () => surface,
        refreshMs: 0,
        startedPosts: new StartedPosts(),
        startedPostGraceMs: 10_000,
      }).start();
      const bare = await repos.tasks.update(task.id, { progressMessageTs: null });
      events.emit('task.started', { task: bare });
      events.emit('task.progress', {
        task: bare,
        progress: { taskId: task.id, attempt: 1, kind: 'tool', message: 'Editing a file' },
      });
    };

    it('updates the "Task started" message the launching instance posts, never a second one', async () => {
      await launchedElsewhere();
      await vi.advanceTimersByTimeAsync(4000);
      expect(surface.posts).toHaveLength(1); // the one from beforeEach; the service did not post its own
      expect(surface.updates).toHaveLength(0);
      const posted = await surface.post('C1', { text: 'Task started' }, '100.1');
      await repos.tasks.update(task.id, { progressMessageTs: posted.ts });
      await vi.advanceTimersByTimeAsync(3000);
      expect(surface.posts).toHaveLength(2);
      expect(new Set(surface.updates.map((u) => u.ts))).toEqual(new Set([posted.ts]));
      expect(textOf(surface.updates.at(-1)!.message)).toContain('Editing a file');
    });

    it('posts the message itself once the grace has passed and none was recorded', async () => {
      await launchedElsewhere();
      await vi.advanceTimersByTimeAsync(9000);
      expect(surface.posts).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(3000);
      expect(surface.posts).toHaveLength(2);
      expect(textOf(surface.posts.at(-1)!.message)).toContain('Editing a file');
      expect((await repos.tasks.findById(task.id))?.progressMessageTs).toBe(surface.posts.at(-1)!.ts);
    });
  });

  it('shows the TodoWrite plan as a checklist, keeps continuation notices, and ends with the plan ticked', async () => {
    const todo = (statuses: string[]) =>
      JSON.stringify({
        todos: ['Read auth.ts', 'Fix the null check', 'Run the tests'].map((content, i) => ({
          content,
          status: statuses[i],
          activeForm: content,
        })),
      });
    const progress = (over: Partial<TaskProgress>) =>
      events.emit('task.progress', {
        task,
        progress: { taskId: task.id, attempt: 1, kind: 'tool', message: 'x', ...over },
      });
    events.emit('task.started', { task });
    progress({
      tool: 'TodoWrite',
      message: 'Updating the plan',
      input: todo(['in_progress', 'pending', 'pending']),
    });
    await vi.advanceTimersByTimeAsync(3500);
    let shown = textOf(surface.updates.at(-1)!.message);
    expect(shown).toContain('*Plan* (0/3)');
    expect(shown).toContain('☐ *Read auth.ts*');
    expect(shown).toContain('☐ Fix the null check');
    progress({ kind: 'continuation', message: 'Auto-continuing (1/3)' });
    progress({
      tool: 'TodoWrite',
      message: 'Updating the plan',
      input: todo(['completed', 'in_progress', 'pending']),
    });
    progress({ tool: 'Edit', message: 'Editing src/auth.ts' });
    await vi.advanceTimersByTimeAsync(3500);
    shown = textOf(surface.updates.at(-1)!.message);
    expect(shown).toContain('*Plan* (1/3)');
    expect(shown).toContain('☑ ~Read auth.ts~');
    expect(shown).toContain('Auto-continuing (1/3)');
    expect(shown).toContain('Editing src/auth.ts');

    progress({
      tool: 'TodoWrite',
      message: 'Updating the plan',
      input: todo(['completed', 'completed', 'completed']),
    });
    await repos.tasks.transition(task.id, 'submitted');
    const done = (await repos.tasks.transition(task.id, 'completed', { completedAt: Date.now() })).task;
    events.emit('task.completed', {
      task: done,
      message: {
        taskId: task.id,
        attempt: 1,
        result: 'Done',
        filesChanged: [],
        commandsRun: [],
        metrics: {
          inputTokens: 1,
          outputTokens: 1,
          cacheReadTokens: 0,
          cacheCreationTokens: 0,
          costUsd: 0.01,
          durationMs: 1000,
          numTurns: 1,
          continuations: 1,
        },
      },
    });
    await vi.advanceTimersByTimeAsync(5000);
    await svc.idle();
    const final = surface.updates.at(-1)!;
    expect(final.ts).toBe(task.progressMessageTs);
    expect(textOf(final.message)).toContain('Task completed');
    expect(textOf(final.message)).toContain('*Plan* (3/3)');
    expect(surface.posts).toHaveLength(1);
  });

  it('renders recoverable errors with a Retry button and posts agent-offline notices to waiting threads', async () => {
    await repos.tasks.transition(task.id, 'queued');
    events.emit('agent.offline', {
      agentId: 'agent-1',
      reason: 'heartbeat timeout',
      reconnectEtaMs: 300_000,
    });
    await svc.idle();
    expect(textOf(surface.posts.at(-1)!.message)).toMatch(/offline[\s\S]*5 min/);
    const failed = (await repos.tasks.transition(task.id, 'failed', { recoverable: true })).task;
    events.emit('task.failed', {
      task: failed,
      message: {
        taskId: task.id,
        attempt: 1,
        error: 'Model overloaded',
        recoverable: true,
        errorCode: 'MODEL_OVERLOADED',
      },
    });
    await vi.advanceTimersByTimeAsync(5000);
    await svc.idle();
    const err = textOf(surface.updates.at(-1)!.message);
    expect(surface.updates.at(-1)!.ts).toBe(task.progressMessageTs);
    expect(err).toContain('Model overloaded');
    expect(err).toContain('task_retry');
    expect(surface.reactions.at(-1)).toEqual({ op: 'add', ts: '100.1', name: 'x' });
  });
  it('keeps one update per 3 s for a task when another instance takes it over', async () => {
    const times: number[] = [];
    const timed = new RecordingSurface();
    const update = timed.update.bind(timed);
    timed.update = async (channelId, ts, message) => {
      times.push(Date.now());
      await update(channelId, ts, message);
    };
    const instance = () => {
      const on = new TaskEvents();
      const svc = new NotificationService({
        events: on,
        tasks: repos.tasks,
        bots: new BotRegistry(),
        surfaceFor: () => timed,
        refreshMs: 0,
      }).start();
      return { svc, step: (n: number) => on.emit('task.progress', { task, progress: step(n) }) };
    };
    const step = (n: number): TaskProgress => ({
      taskId: task.id,
      attempt: 1,
      kind: 'tool',
      message: `Step ${n}`,
    });
    const a = instance();
    const b = instance();
    for (let n = 0; n < 8; n++) {
      a.step(n);
      await vi.advanceTimersByTimeAsync(500);
    }
    // Instance A dies 1 s after its last update; its agent's messages now reach instance B.
    a.svc.stop();
    for (let n = 8; n < 20; n++) {
      b.step(n);
      await vi.advanceTimersByTimeAsync(500);
    }
    b.svc.stop();
    expect(times.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(3000);
  });

  it("sends an owner's redraw of a task message through the scheduler, after that message's update in flight", async () => {
    let redraw: TaskMessageRedraw | undefined;
    const log: string[] = [];
    const slow = Object.assign(Object.create(surface) as typeof surface, {
      async update(
        _channelId: string,
        _ts: string,
        message: { text: string },
        options?: { scheduled?: boolean },
      ) {
        log.push(`start ${message.text.split('\n')[0]} ${Date.now()} ${options?.scheduled === true}`);
        await new Promise((r) => setTimeout(r, 500));
        log.push(`end ${message.text.split('\n')[0]} ${Date.now()}`);
      },
    });
    svc.stop();
    let drawn = 'plan v1';
    svc = new NotificationService({
      events,
      tasks: repos.tasks,
      bots: new BotRegistry(),
      surfaceFor: () => slow,
      refreshMs: 0,
      owner: {
        progress: () => undefined,
        outcome: async () => undefined,
        useRedraw: (door) => {
          redraw = door;
        },
      },
    }).start();
    expect(redraw).toBeDefined();
    const t0 = Date.now();
    events.emit('task.progress', {
      task,
      progress: { taskId: task.id, attempt: 1, kind: 'tool', message: 'Editing a.ts' },
    });
    // The message existed before: its first update waits one task interval (3 s).
    await vi.advanceTimersByTimeAsync(3100);
    expect(log).toEqual([`start Running: Coder fix (task_n1) ${t0 + 3000} true`]);
    const landed = redraw!(task, () => ({ text: drawn }));
    drawn = 'plan v2';
    await vi.advanceTimersByTimeAsync(3500);
    expect(await landed).toBe(true);
    // Not beside the update in flight: one interval after it, through the one-request client, drawn when sent.
    expect(log.slice(1)).toEqual([
      `end Running: Coder fix (task_n1) ${t0 + 3500}`,
      `start plan v2 ${t0 + 6000} true`,
      `end plan v2 ${t0 + 6500}`,
    ]);
  });
});
