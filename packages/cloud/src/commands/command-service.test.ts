import { systemClock, type TaskComplete } from '@bematic/protocol';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RecordingDispatcher,
  RecordingSurface,
  request,
  sqliteRepos,
  textOf,
} from '../../test/support/conversation.js';
import { BotRegistry } from '../bots/bot-registry.js';
import { createModelStrategy, DEFAULT_MODEL_TIERS } from '../bots/model-routing.js';
import type { Project, Repositories, Task } from '../db/repositories/types.js';
import { AgentManager } from '../gateway/agent-manager.js';
import { TaskEvents } from '../tasks/task-events.js';
import { TaskLifecycle } from '../tasks/task-lifecycle.js';
import { CommandService } from './command-service.js';
import { createCommandContext, type RetentionOperations } from './context.js';
import { createInboundPipeline } from './inbound-pipeline.js';

const metrics = (cost: number) => ({
  inputTokens: 100,
  outputTokens: 50,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  costUsd: cost,
  durationMs: 1000,
  numTurns: 2,
  continuations: 0,
});

describe('CommandService end to end (real SQLite)', () => {
  let env: Awaited<ReturnType<typeof sqliteRepos>>;
  let repos: Repositories;
  let surface: RecordingSurface;
  let dispatcher: RecordingDispatcher;
  let events: TaskEvents;
  let project: Project;
  let pipeline: ReturnType<typeof createInboundPipeline>;
  let commands: CommandService;
  const retentionCalls: string[] = [];
  let observed: { resolutions: number[]; routes: string[] };

  beforeEach(async () => {
    env = await sqliteRepos();
    repos = env.repos;
    surface = new RecordingSurface();
    dispatcher = new RecordingDispatcher();
    events = new TaskEvents();
    const agents = new AgentManager({
      repos,
      events,
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      heartbeatIntervalMs: 60_000,
    });
    const retention: RetentionOperations = {
      archive: async (taskId, reason, actor) => {
        retentionCalls.push(`archive ${taskId} ${reason} ${actor}`);
        return { id: 'archive_1' };
      },
      restore: async (id) => {
        throw new Error(`archive ${id} not found`);
      },
    };
    observed = { resolutions: [], routes: [] };
    commands = new CommandService(
      createCommandContext({
        repos,
        dispatcher,
        agents,
        retention,
        bots: new BotRegistry(),
        modelStrategy: createModelStrategy(),
        surfaceFor: () => surface,
        tasks: new TaskLifecycle({ repos, events, logger: pino({ level: 'silent' }) }),
        metrics: {
          observeBotResolution: (ms) => observed.resolutions.push(ms),
          recordModelRouting: (bot, tier) => observed.routes.push(`${bot}:${tier}`),
        },
      }),
    );
    commands.attach(events);
    pipeline = createInboundPipeline({ commands, repos, auth: { adminUserIds: ['UADMIN'] } });
    project = await repos.projects.create({
      name: 'web',
      channelId: 'C1',
      agentId: 'agent-1',
      localPath: '/srv/web',
      defaultModel: null,
      maxBudgetUsd: 2,
    });
  });
  afterEach(async () => {
    await env.cleanup();
  });

  const mention = async (
    text: string,
    over: Parameters<typeof request>[1] extends infer R ? Partial<R> : never = {},
  ) => {
    const req = request(surface, { kind: 'mention', text, ...over });
    await pipeline.handle(req);
    return req;
  };

  it('mention → pending task with the right submission, "Task started" in the thread, eyes, dispatch', async () => {
    await mention('code fix the login bug in auth.ts --priority high');
    expect(dispatcher.dispatched).toHaveLength(1);
    const task = (await repos.tasks.findById(dispatcher.dispatched[0]!.id))!;
    expect(task).toMatchObject({
      status: 'pending',
      botName: 'coder',
      command: 'fix',
      prompt: 'fix the login bug in auth.ts',
      model: DEFAULT_MODEL_TIERS.premium,
      priority: 'high',
      projectId: project.id,
      agentId: 'agent-1',
      threadTs: '1699999999.000100',
      userId: 'U1',
    });
    expect(task.submission).toMatchObject({
      taskId: task.id,
      localPath: '/srv/web',
      allowedTools: ['Read', 'Edit', 'Write', 'Glob', 'Grep', 'Bash'],
      maxBudgetUsd: 2,
    });
    const started = surface.posts[0]!;
    expect(started.threadTs).toBe('1699999999.000100');
    expect(textOf(started.message)).toContain('Task started');
    expect(textOf(started.message)).toContain('task_cancel');
    expect(task.progressMessageTs).toBe(started.ts);
    expect(surface.reactions).toContainEqual({ op: 'add', ts: '1699999999.000100', name: 'eyes' });
    expect((await repos.audit.list({ action: 'task.created' }))[0]?.resourceId).toBe(task.id);
  });

  it('hands the task to the agent before "Task started" and the reaction go out', async () => {
    const seenAtDispatch: Array<{ posts: number; reactions: number }> = [];
    const dispatch = dispatcher.dispatch.bind(dispatcher);
    dispatcher.dispatch = (task) => {
      seenAtDispatch.push({ posts: surface.posts.length, reactions: surface.reactions.length });
      return dispatch(task);
    };
    await mention('code fix the login bug');
    expect(seenAtDispatch).toEqual([{ posts: 0, reactions: 0 }]);
    expect(textOf(surface.posts[0]!.message)).toContain('Task started');
    const task = (await repos.tasks.findById(dispatcher.dispatched[0]!.id))!;
    expect(task.progressMessageTs).toBe(surface.posts[0]!.ts);
    expect(surface.reactions).toContainEqual({ op: 'add', ts: '1699999999.000100', name: 'eyes' });
  });

  it('posts the offline notice with an ETA when the task is queued for an absent agent', async () => {
    dispatcher.next = {
      sent: false,
      queued: true,
      agentOnline: false,
      reason: 'agent offline',
      reconnectEtaMs: 120_000,
    };
    await mention('review auth.ts');
    expect(textOf(surface.posts[1]!.message)).toMatch(/agent-1.*offline[\s\S]*2 min/);
  });

  it('says the agent is busy, not offline, when a connected agent cannot take the task yet', async () => {
    dispatcher.next = {
      sent: false,
      queued: true,
      agentOnline: true,
      reason: 'agent agent-1 is overloaded',
      reconnectEtaMs: null,
    };
    await mention('review auth.ts');
    const notice = textOf(surface.posts[1]!.message);
    expect(notice).toMatch(/agent-1.*busy/);
    expect(notice).not.toMatch(/offline/);
    expect(notice).toMatch(/overloaded/);
  });

  it('reports bot resolution time and the model tier chosen for every launched task', async () => {
    await mention('code fix the login bug');
    await mention('review auth.ts');
    await mention('code fix it --model claude-custom-1');
    await mention('code');
    expect(observed.routes).toEqual(['coder:premium', 'reviewer:standard', 'coder:custom']);
    expect(observed.resolutions).toHaveLength(4);
    expect(observed.resolutions.every((ms) => ms >= 0)).toBe(true);
  });

  it('plain words go to the default bot; an empty mention gets a how-to and starts nothing', async () => {
    await mention('please fix the typo in README');
    expect(dispatcher.dispatched[0]).toMatchObject({
      botName: 'coder',
      command: 'implement',
      prompt: 'please fix the typo in README',
    });
    await repos.projects.update(project.id, { defaultBot: 'reviewer' });
    await mention('why does login fail on Safari?');
    expect(dispatcher.dispatched[1]).toMatchObject({ botName: 'reviewer', command: 'review' });
    for (const text of ['', 'code', '--model opus']) {
      const empty = await mention(text);
      expect(textOf(empty.responses[0]!)).toMatch(/plain words/);
    }
    expect(dispatcher.dispatched).toHaveLength(2);
    expect(await repos.audit.list({ action: 'request.empty' })).toHaveLength(3);
    // A long request is still one task, run as asked: planning first is only ever the person's choice.
    const long = `code implement ${'a billing page with invoices, refunds and exports; '.repeat(20)}`;
    expect(long.length).toBeGreaterThan(600);
    await mention(long);
    expect(dispatcher.dispatched[2]).toMatchObject({ botName: 'coder', command: 'implement' });
    expect(await repos.taskPlans.findByTask(dispatcher.dispatched[2]!.id)).toBeUndefined();
  });

  it('unknown default bot, bad flags and viewers are refused clearly and audited', async () => {
    await repos.projects.update(project.id, { defaultBot: 'wizard' });
    const a = await mention('do magic');
    expect(textOf(a.responses[0]!)).toMatch(/default bot "wizard" does not exist/);
    await repos.projects.update(project.id, { defaultBot: 'coder' });
    const b = await mention('code fix it --model gpt-9');
    expect(textOf(b.responses[0]!)).toMatch(/Unknown model/);
    await repos.users.upsert({ id: 'UV', role: 'viewer' });
    const c = await mention('code fix it', { userId: 'UV' });
    expect(textOf(c.responses[0]!)).toMatch(/viewer.*not allowed/);
    expect(dispatcher.dispatched).toHaveLength(0);
    const codes = (await repos.audit.list({ action: 'request.rejected' })).map((e) => e.details.code);
    expect(codes.sort()).toEqual(['forbidden', 'invalid_command', 'unknown_bot']);
  });

  it("a thread reply continues the Claude session of the thread's task", async () => {
    await mention('code fix the bug');
    const first = dispatcher.dispatched[0]!;
    await repos.tasks.transition(first.id, 'submitted');
    await repos.tasks.transition(first.id, 'completed', { sessionId: 'sess-abc', completedAt: Date.now() });
    const reply = request(surface, {
      kind: 'thread_reply',
      text: 'also add a test',
      threadTs: first.threadTs,
      messageTs: '1699999999.000200',
    });
    await pipeline.handle(reply);
    const second = dispatcher.dispatched[1]!;
    expect(second).toMatchObject({
      botName: 'coder',
      command: 'fix',
      prompt: 'also add a test',
      threadTs: first.threadTs,
    });
    expect(second.submission.resumeSessionId).toBe('sess-abc');
  });

  it('a reply in a thread that is not one of our tasks is conversation: no task, no answer', async () => {
    const reply = request(surface, {
      kind: 'thread_reply',
      text: 'looks good to me, shipping it',
      threadTs: '1699999000.000100',
      messageTs: '1699999000.000200',
    });
    await pipeline.handle(reply);
    expect(dispatcher.dispatched).toHaveLength(0);
    expect(reply.responses).toHaveLength(0);
    expect(await repos.tasks.findByThread(reply.channelId, '1699999000.000100')).toBeUndefined();
  });

  it('retry button makes a new task with the same submission in the same thread', async () => {
    await mention('code fix the bug');
    const first = dispatcher.dispatched[0]!;
    await repos.tasks.transition(first.id, 'failed', {
      errorMessage: 'overloaded',
      recoverable: true,
      errorCode: 'MODEL_OVERLOADED',
    });
    const click = request(surface, {
      kind: 'action',
      text: 'task_retry',
      actionValue: first.id,
      threadTs: first.threadTs,
    });
    await pipeline.handle(click);
    const retry = dispatcher.dispatched[1]!;
    expect(retry.id).not.toBe(first.id);
    expect({ ...retry.submission, taskId: 'x' }).toEqual({ ...first.submission, taskId: 'x' });
    expect(retry.submission.taskId).toBe(retry.id);
    expect(retry.threadTs).toBe(first.threadTs);
    // Not-recoverable failures cannot be retried.
    await repos.tasks.transition(retry.id, 'failed', {
      recoverable: false,
      errorCode: 'BUDGET_EXCEEDED',
      errorMessage: 'Budget exceeded',
    });
    const again = request(surface, { kind: 'action', text: 'task_retry', actionValue: retry.id });
    await pipeline.handle(again);
    expect(dispatcher.dispatched).toHaveLength(2);
    expect(textOf(again.responses[0]!)).toMatch(/cannot be retried/);
  });

  it("cancel: own task for a developer, anyone's for an admin, never for a viewer", async () => {
    await mention('code fix the bug');
    const t = dispatcher.dispatched[0]!;
    await repos.users.upsert({ id: 'UV', role: 'viewer' });
    await repos.users.upsert({ id: 'UD2', role: 'developer' });
    for (const userId of ['UV', 'UD2']) {
      const r = request(surface, { kind: 'action', text: 'task_cancel', actionValue: t.id, userId });
      await pipeline.handle(r);
      expect(textOf(r.responses[0]!)).toMatch(/cannot cancel|Only admins/);
    }
    expect(dispatcher.cancelled).toEqual([]);
    await pipeline.handle(request(surface, { kind: 'slash', text: `cancel ${t.id}`, userId: 'UADMIN' }));
    expect(dispatcher.cancelled).toMatchObject([{ taskId: t.id, actor: 'UADMIN' }]);
    // Gateway never saw it (still pending): the command service cancels it itself, once.
    dispatcher.cancelOutcome = { outcome: 'not-found' };
    const seen: string[] = [];
    events.on('task.cancelled', (p) => void seen.push(p.task.id));
    await pipeline.handle(request(surface, { kind: 'action', text: 'task_cancel', actionValue: t.id }));
    expect((await repos.tasks.findById(t.id))?.status).toBe('cancelled');
    expect(seen).toEqual([t.id]);
  });

  it('a task the gateway cannot take fails once through the lifecycle, audited and announced', async () => {
    dispatcher.failure = new Error('outbox unavailable');
    const failed: { id: string; code: string; stage: unknown }[] = [];
    events.on('task.failed', (p) => {
      failed.push({ id: p.task.id, code: p.message.errorCode, stage: p.message.context?.stage });
    });
    await mention('code fix the login bug');
    const id = dispatcher.dispatched[0]!.id;
    expect(await repos.tasks.findById(id)).toMatchObject({
      status: 'failed',
      errorCode: 'EXECUTION_FAILED',
      recoverable: true,
      errorMessage: 'Could not hand the task to an agent: outbox unavailable',
    });
    expect(failed).toEqual([{ id, code: 'EXECUTION_FAILED', stage: 'dispatch' }]);
    const audited = await repos.audit.list({ resourceId: id });
    expect(audited.map((a) => a.action).sort()).toEqual(['task.created', 'task.failed']);
  });

  it('/bm status counts every agent; /bm agents shows the first of them, online first, and counts the rest', async () => {
    const answer = async (text: string) => {
      const r = request(surface, { kind: 'slash', text });
      await pipeline.handle(r);
      return textOf(r.responses[0]!);
    };
    expect(await answer('agents')).toMatch(/No agents have connected yet/);
    for (let i = 0; i < 60; i++)
      await repos.agents.upsert({
        id: `box-${String(i).padStart(2, '0')}`,
        status: i < 3 ? 'offline' : 'online',
      });
    expect(await answer('status')).toContain('57/60 agents online');
    const listed = await answer('agents');
    const shown = [...listed.matchAll(/`(box-\d+)`/g)].map((m) => m[1]);
    expect(shown).toHaveLength(50);
    expect(shown[0]).toBe('box-03');
    expect(shown).not.toContain('box-00');
    expect(listed).toContain('…and 10 more (57 of 60 online): the dashboard lists them all');
  });

  it('/bm garbage gets help; projects add is admin only; archive goes through retention', async () => {
    const g = request(surface, { kind: 'slash', text: 'frobnicate --now' });
    await pipeline.handle(g);
    expect(textOf(g.responses[0]!)).toMatch(/Unknown command `frobnicate`[\s\S]*\/bm projects/);
    const empty = request(surface, { kind: 'slash', text: '' });
    await pipeline.handle(empty);
    expect(textOf(empty.responses[0]!)).toContain('Slash commands');

    const denied = request(surface, {
      kind: 'slash',
      text: 'projects add agent-2 /srv/api',
      channelId: 'C2',
    });
    await pipeline.handle(denied);
    expect(textOf(denied.responses[0]!)).toMatch(/not allowed/);
    const ok = request(surface, {
      kind: 'slash',
      text: 'projects add agent-2 /srv/api --name "API server" --model sonnet --budget 5',
      channelId: 'C2',
      userId: 'UADMIN',
    });
    await pipeline.handle(ok);
    expect(await repos.projects.findByChannel('C2')).toMatchObject({
      name: 'API server',
      agentId: 'agent-2',
      localPath: '/srv/api',
      defaultModel: DEFAULT_MODEL_TIERS.standard,
      maxBudgetUsd: 5,
    });
    const bad = request(surface, {
      kind: 'slash',
      text: 'projects add agent-2 relative/path',
      channelId: 'C3',
      userId: 'UADMIN',
    });
    await pipeline.handle(bad);
    expect(textOf(bad.responses[0]!)).toMatch(/absolute path/);

    const arch = request(surface, { kind: 'slash', text: 'archive task_1 old stuff' });
    await pipeline.handle(arch);
    expect(retentionCalls).toContain('archive task_1 old stuff U1');
    const restore = request(surface, { kind: 'slash', text: 'restore archive_9', userId: 'UADMIN' });
    await pipeline.handle(restore);
    expect(textOf(restore.responses[0]!)).toMatch(
      /Could not restore `archive_9`: archive archive_9 not found/,
    );
    const role = request(surface, { kind: 'slash', text: 'users role <@U7|bob> viewer', userId: 'UADMIN' });
    await pipeline.handle(role);
    expect((await repos.users.findById('U7'))?.role).toBe('viewer');
    expect(await repos.audit.list({ action: 'user.role_changed' })).toHaveLength(1);
  });

  it('decomposition: plan → approval → sequential subtasks → summary with aggregated metrics', async () => {
    await mention('code implement a billing page --decompose');
    const planning = dispatcher.dispatched[0]!;
    expect(planning.command).toBe('decompose');
    expect(planning.submission.allowedTools).toEqual(['Read', 'Glob', 'Grep']);
    const complete = async (task: Task, result: string, cost: number) => {
      const current = (await repos.tasks.findById(task.id))!;
      if (current.status === 'pending') await repos.tasks.transition(task.id, 'submitted');
      const message: TaskComplete = {
        taskId: task.id,
        attempt: 1,
        result,
        metrics: metrics(cost),
        filesChanged: [`${task.id}.ts`],
        commandsRun: [],
      };
      const done = await repos.tasks.transition(task.id, 'completed', {
        result,
        ...metrics(cost),
        filesChanged: message.filesChanged,
        completedAt: Date.now(),
      });
      events.emit('task.completed', { task: done.task, message });
    };
    const plan =
      'Plan:\n```json\n{"subtasks":[{"title":"Schema","command":"implement","prompt":"Add tables"},{"title":"UI","prompt":"Build the page"}]}\n```';
    await complete(planning, plan, 0.1);
    const proposed = async () => (await repos.taskPlans.findByTask(planning.id))?.status === 'proposed';
    for (let i = 0; i < 200 && !(await proposed()); i++) await new Promise((r) => setImmediate(r));
    expect(await proposed()).toBe(true);
    // Nothing runs before the person approves the plan.
    expect(dispatcher.dispatched).toHaveLength(1);
    await pipeline.handle(request(surface, { kind: 'action', text: 'plan_run', actionValue: planning.id }));
    await waitFor(() => dispatcher.dispatched.length === 2);
    const twice = request(surface, { kind: 'action', text: 'plan_run', actionValue: planning.id });
    await pipeline.handle(twice);
    expect(textOf(twice.responses[0]!)).toMatch(/already running/);
    const s1 = dispatcher.dispatched[1]!;
    expect(s1).toMatchObject({
      parentTaskId: planning.id,
      command: 'implement',
      model: DEFAULT_MODEL_TIERS.premium,
    });
    expect(s1.prompt).toContain('step 1 of 2');
    await complete(s1, 'did schema', 0.2);
    await waitFor(() => dispatcher.dispatched.length === 3);
    const s2 = dispatcher.dispatched[2]!;
    expect(s2.prompt).toContain('Build the page');
    await complete(s2, 'did ui', 0.3);
    await waitFor(() => surface.posts.some((p) => textOf(p.message).includes('All 2 steps completed')));
    const parent = (await repos.tasks.findById(planning.id))!;
    expect(parent.costUsd).toBeCloseTo(0.6);
    expect(parent.inputTokens).toBe(300);
    expect(parent.filesChanged.sort()).toEqual([`${s1.id}.ts`, `${s2.id}.ts`].sort());
    expect(dispatcher.dispatched).toHaveLength(3);
  });
});

async function waitFor(cond: () => boolean, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition not reached');
}
