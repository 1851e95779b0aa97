import {
  IllegalTransitionError,
  isTerminalStatus,
  judgeTransition,
  systemClock,
  TASK_STATUSES,
  type TaskStatus,
  type TaskSubmission,
} from '@bematic/protocol';
import { type RawBuilder, sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { DuplicateRecordError, RecordNotFoundError } from '../../src/db/errors.js';
import { MIGRATIONS, migrateToLatest, migrationStatus } from '../../src/db/migrations/index.js';
import { createRepositories } from '../../src/db/repositories/index.js';
import type {
  AgentListingQuery,
  AgentPosition,
  AgentRecord,
  NewTask,
  Repositories,
  Task,
  TaskSearch,
} from '../../src/db/repositories/types.js';
import type { Schema } from '../../src/db/schema.js';
import { RetentionService } from '../../src/retention/retention-service.js';

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;
const TABLES: readonly (keyof Schema)[] = [
  'sessions',
  'offline_queue',
  'tasks',
  'projects',
  'users',
  'audit_logs',
  'api_keys',
  'archived_tasks',
  'agents',
  'task_steps',
  'console_messages',
  'permission_requests',
  'task_totals',
  'console_credentials',
  // Kept by triggers on the tables above: emptied after them.
  'task_costs',
  'archive_totals',
];

function submission(overrides: Partial<TaskSubmission> = {}): TaskSubmission {
  return {
    taskId: 'placeholder',
    projectId: 'proj_1',
    localPath: '/srv/repo',
    botName: 'coder',
    command: 'code',
    prompt: 'fix the login bug in auth.ts',
    systemPrompt: 'You are a careful engineer.',
    model: 'claude-sonnet-4-5',
    allowedTools: ['Read', 'Edit', 'Bash'],
    priority: 'normal',
    ...overrides,
  };
}

function newTask(overrides: Partial<NewTask> = {}): NewTask {
  return {
    projectId: 'proj_1',
    agentId: 'agent_1',
    botName: 'coder',
    command: 'code',
    prompt: 'fix the login bug in auth.ts',
    model: 'claude-sonnet-4-5',
    priority: 'normal',
    userId: 'U1',
    channelId: 'C1',
    submission: submission(),
    ...overrides,
  };
}

/** What another writer does: a task row copied by one INSERT … SELECT, under a new id and with a new prompt. */
async function copyTask(
  database: Database,
  from: string,
  id: string,
  prompt: RawBuilder<string>,
): Promise<void> {
  const columns = [
    'project_id',
    'agent_id',
    'bot_name',
    'command',
    'model',
    'priority',
    'status',
    'user_id',
    'channel_id',
    'submission',
    'files_changed',
    'commands_run',
    'result',
    'input_tokens',
    'output_tokens',
    'cache_read_tokens',
    'cache_creation_tokens',
    'cost_usd',
    'duration_ms',
    'num_turns',
    'continuations',
    'created_at',
    'updated_at',
  ].map((c) => sql.ref(c));
  await sql`insert into tasks (id, prompt, ${sql.join(columns)})
    select ${id}, ${prompt}, ${sql.join(columns)} from tasks where id = ${from}`.execute(database.db);
}

/**
 * The behaviour every repository implementation promises, run against a real
 * database. `open` must return a fresh, empty (unmigrated or migrated)
 * database; the suite migrates it, opens it once, and empties its tables
 * before each test.
 */
export function describeRepositoryConformance(name: string, open: () => Promise<Database>): void {
  describe(`repository conformance: ${name}`, () => {
    let database: Database;
    let repos: Repositories;
    let now = T0;
    const tick = (ms = 1) => {
      now += ms;
      return now;
    };

    beforeAll(async () => {
      database = await open();
      await migrateToLatest(database);
    });
    afterAll(async () => {
      await database?.close();
    });
    beforeEach(async () => {
      for (const table of TABLES) await database.db.deleteFrom(table).execute();
      now = T0;
      repos = createRepositories(database.db, { now: () => now });
    });

    describe('migrations', () => {
      it('are all applied and a second run applies nothing', async () => {
        expect(await migrateToLatest(database)).toEqual({ applied: [] });
        const status = await migrationStatus(database);
        expect(status.pending).toEqual([]);
        expect(status.migrations.map((m) => m.name)).toEqual(Object.keys(MIGRATIONS));
        for (const m of status.migrations) expect(m.executedAt).toBeInstanceOf(Date);
      });
    });

    describe('projects', () => {
      it('creates with a generated id and defaults, and finds by id and channel', async () => {
        const p = await repos.projects.create({
          name: 'web',
          channelId: 'C1',
          agentId: 'agent_1',
          localPath: '/srv/web',
          defaultModel: null,
          maxBudgetUsd: 2.5,
        });
        expect(p).toEqual({
          id: expect.stringMatching(/^proj_[0-9a-f]{16}$/),
          name: 'web',
          channelId: 'C1',
          agentId: 'agent_1',
          fallbackAgentIds: [],
          localPath: '/srv/web',
          defaultModel: null,
          maxBudgetUsd: 2.5,
          defaultBot: 'coder',
          mcpServers: null,
          createdAt: T0,
          updatedAt: T0,
        });
        expect(await repos.projects.findById(p.id)).toEqual(p);
        expect(await repos.projects.findByChannel('C1')).toEqual(p);
        expect(await repos.projects.findByChannel('C404')).toBeUndefined();
        expect(await repos.projects.findById('nope')).toBeUndefined();
      });

      it('round-trips MCP servers, and removes them with null', async () => {
        const mcpServers = {
          docs: { type: 'http' as const, url: 'https://mcp.example.com/', headers: { 'x-team': 'web' } },
          fs: { type: 'stdio' as const, command: 'mcp-fs', args: ['--root', '.'] },
        };
        const p = await repos.projects.create({
          name: 'mcp',
          channelId: 'C-MCP',
          agentId: 'agent_1',
          localPath: '/srv/mcp',
          defaultModel: null,
          maxBudgetUsd: null,
          mcpServers,
        });
        expect((await repos.projects.findById(p.id))?.mcpServers).toEqual(mcpServers);
        expect((await repos.projects.update(p.id, { mcpServers: null })).mcpServers).toBeNull();
      });

      it('keeps a given id and round-trips fallback agents', async () => {
        const p = await repos.projects.create({
          id: 'proj_api',
          name: 'api',
          channelId: 'C2',
          agentId: 'a1',
          fallbackAgentIds: ['a2', 'a3'],
          localPath: '/srv/api',
          defaultModel: 'claude-opus-4-1',
          maxBudgetUsd: null,
        });
        expect(p.id).toBe('proj_api');
        expect((await repos.projects.findById('proj_api'))?.fallbackAgentIds).toEqual(['a2', 'a3']);
      });

      it('a project sends plain words to the coder unless told otherwise', async () => {
        const base = { name: 'x', agentId: 'a', localPath: '/x', defaultModel: null, maxBudgetUsd: null };
        const p = await repos.projects.create({ ...base, channelId: 'C1' });
        expect(p.defaultBot).toBe('coder');
        const q = await repos.projects.create({ ...base, channelId: 'C2', defaultBot: 'review' });
        expect((await repos.projects.findById(q.id))?.defaultBot).toBe('review');
        expect((await repos.projects.update(p.id, { defaultBot: 'ops' })).defaultBot).toBe('ops');
      });

      it('rejects a second project on the same channel', async () => {
        const base = { name: 'x', agentId: 'a', localPath: '/x', defaultModel: null, maxBudgetUsd: null };
        await repos.projects.create({ ...base, channelId: 'C1' });
        await expect(repos.projects.create({ ...base, channelId: 'C1' })).rejects.toBeInstanceOf(
          DuplicateRecordError,
        );
        const other = await repos.projects.create({ ...base, channelId: 'C2' });
        await expect(repos.projects.update(other.id, { channelId: 'C1' })).rejects.toBeInstanceOf(
          DuplicateRecordError,
        );
        expect(await repos.projects.list()).toHaveLength(2);
      });

      it('lists by name, updates only the given fields, and deletes', async () => {
        const base = { agentId: 'a', localPath: '/x', defaultModel: 'm', maxBudgetUsd: 1 };
        const b = await repos.projects.create({ ...base, name: 'beta', channelId: 'C2' });
        const a = await repos.projects.create({ ...base, name: 'alpha', channelId: 'C1' });
        expect((await repos.projects.list()).map((p) => p.name)).toEqual(['alpha', 'beta']);

        tick(50);
        const updated = await repos.projects.update(b.id, {
          fallbackAgentIds: ['z'],
          defaultModel: null,
          maxBudgetUsd: 0.75,
        });
        expect(updated).toEqual({
          ...b,
          fallbackAgentIds: ['z'],
          defaultModel: null,
          maxBudgetUsd: 0.75,
          updatedAt: T0 + 50,
        });
        expect(await repos.projects.findById(b.id)).toEqual(updated);
        await expect(repos.projects.update('nope', { name: 'n' })).rejects.toBeInstanceOf(
          RecordNotFoundError,
        );

        expect(await repos.projects.delete(a.id)).toBe(true);
        expect(await repos.projects.delete(a.id)).toBe(false);
        expect((await repos.projects.list()).map((p) => p.id)).toEqual([b.id]);
      });
    });

    describe('tasks', () => {
      it('creates a pending task with a generated id carried into its submission', async () => {
        const t = await repos.tasks.create(newTask());
        expect(t.id).toMatch(/^task_[0-9a-f]{16}$/);
        expect(t).toEqual({
          ...newTask(),
          id: t.id,
          status: 'pending',
          submission: { ...submission(), taskId: t.id },
          threadTs: null,
          messageTs: null,
          progressMessageTs: null,
          sessionId: null,
          parentTaskId: null,
          result: null,
          errorMessage: null,
          errorCode: null,
          recoverable: null,
          warning: null,
          filesChanged: [],
          commandsRun: [],
          inputTokens: 0,
          outputTokens: 0,
          cacheReadTokens: 0,
          cacheCreationTokens: 0,
          costUsd: 0,
          durationMs: 0,
          numTurns: 0,
          continuations: 0,
          restoredFromArchive: null,
          restoredAt: null,
          createdAt: T0,
          updatedAt: T0,
          startedAt: null,
          completedAt: null,
          workspace: null,
          pullRequestUrl: null,
          attempt: 0,
        });
        expect(await repos.tasks.findById(t.id)).toEqual(t);
        expect(await repos.tasks.findById('task_missing')).toBeUndefined();
        await expect(repos.tasks.create(newTask({ id: t.id }))).rejects.toBeInstanceOf(DuplicateRecordError);
      });

      it('keeps every optional field given at creation, and JSON survives unicode and quoting', async () => {
        const prompt = 'Fix "auth" — ünïcödé 🚀\nline two\t\\ and \u2028 too';
        const t = await repos.tasks.create(
          newTask({
            id: 'task_given',
            status: 'queued',
            priority: 'urgent',
            prompt,
            threadTs: '1700000000.000100',
            messageTs: '1700000000.000100',
            parentTaskId: 'task_parent',
            sessionId: 'sess-abc',
            restoredFromArchive: 'archive_1',
            restoredAt: T0 - 5,
            submission: submission({
              prompt,
              priority: 'urgent',
              maxBudgetUsd: 1.25,
              resumeSessionId: 'sess-abc',
              parentTaskId: 'task_parent',
              allowedTools: ['Read', 'Bash(git status:*)'],
            }),
          }),
        );
        const found = await repos.tasks.findById('task_given');
        expect(found).toEqual(t);
        expect(found).toMatchObject({
          status: 'queued',
          priority: 'urgent',
          prompt,
          threadTs: '1700000000.000100',
          parentTaskId: 'task_parent',
          sessionId: 'sess-abc',
          restoredFromArchive: 'archive_1',
          restoredAt: T0 - 5,
        });
        expect(found?.submission).toEqual(
          submission({
            taskId: 'task_given',
            prompt,
            priority: 'urgent',
            maxBudgetUsd: 1.25,
            resumeSessionId: 'sess-abc',
            parentTaskId: 'task_parent',
            allowedTools: ['Read', 'Bash(git status:*)'],
          }),
        );
      });

      it('reads many tasks by id in one call, leaving out the missing', async () => {
        const a = await repos.tasks.create(newTask());
        const b = await repos.tasks.create(newTask({ prompt: 'another' }));
        const found = await repos.tasks.findByIds([a.id, 'task_missing', b.id]);
        expect(found.sort((x, y) => x.id.localeCompare(y.id))).toEqual(
          [a, b].sort((x, y) => x.id.localeCompare(y.id)),
        );
        expect(await repos.tasks.findByIds([b.id])).toEqual([b]);
        expect(await repos.tasks.findByIds([])).toEqual([]);
      });

      it('finds the most recent task of a thread', async () => {
        await repos.tasks.create(newTask({ id: 'task_a', threadTs: '1.1' }));
        tick();
        await repos.tasks.create(newTask({ id: 'task_b', threadTs: '1.1' }));
        tick();
        await repos.tasks.create(newTask({ id: 'task_c', threadTs: '2.2' }));
        await repos.tasks.create(newTask({ id: 'task_d', channelId: 'C2', threadTs: '1.1' }));
        expect((await repos.tasks.findByThread('C1', '1.1'))?.id).toBe('task_b');
        expect((await repos.tasks.findByThread('C2', '1.1'))?.id).toBe('task_d');
        expect(await repos.tasks.findByThread('C1', '9.9')).toBeUndefined();
      });

      it('lists newest first with every filter', async () => {
        await repos.tasks.create(newTask({ id: 't1', projectId: 'p1', agentId: 'a1' }));
        tick(10);
        await repos.tasks.create(newTask({ id: 't2', projectId: 'p1', agentId: 'a2', status: 'running' }));
        tick(10);
        await repos.tasks.create(newTask({ id: 't3', projectId: 'p2', agentId: 'a1', parentTaskId: 't1' }));
        tick(10);
        await repos.tasks.create(newTask({ id: 't4', projectId: 'p2', agentId: 'a2', status: 'completed' }));
        const ids = async (q?: Parameters<Repositories['tasks']['list']>[0]) =>
          (await repos.tasks.list(q)).map((t) => t.id);

        expect(await ids()).toEqual(['t4', 't3', 't2', 't1']);
        expect(await ids({ status: 'pending' })).toEqual(['t3', 't1']);
        expect(await ids({ status: ['running', 'completed'] })).toEqual(['t4', 't2']);
        expect(await ids({ status: [] })).toEqual([]);
        expect(await ids({ projectId: 'p1' })).toEqual(['t2', 't1']);
        expect(await ids({ agentId: 'a1' })).toEqual(['t3', 't1']);
        expect(await ids({ parentTaskId: 't1' })).toEqual(['t3']);
        expect(await ids({ olderThan: T0 + 20 })).toEqual(['t2', 't1']);
        expect(await ids({ limit: 2 })).toEqual(['t4', 't3']);
        expect(await ids({ projectId: 'p2', agentId: 'a2', status: 'completed' })).toEqual(['t4']);
      });

      it('counts by status, with zero for every unused status, as tasks move and go', async () => {
        const a = await repos.tasks.create(newTask());
        const b = await repos.tasks.create(newTask());
        await repos.tasks.create(newTask({ status: 'running' }));
        const zero = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0]));
        expect(await repos.tasks.countByStatus()).toEqual({ ...zero, pending: 2, running: 1 });
        await repos.tasks.transition(a.id, 'cancelled');
        await repos.tasks.delete(b.id);
        expect(await repos.tasks.countByStatus()).toEqual({ ...zero, running: 1, cancelled: 1 });
      });

      it('walks a task through its lifecycle, stamping start and completion', async () => {
        const t = await repos.tasks.create(newTask());
        tick();
        const submitted = await repos.tasks.transition(t.id, 'submitted');
        expect(submitted.changed).toBe(true);
        expect(submitted.task).toMatchObject({ status: 'submitted', updatedAt: T0 + 1, startedAt: null });

        tick();
        const running = await repos.tasks.transition(t.id, 'running', { sessionId: 'sess-1' });
        expect(running.task).toMatchObject({ status: 'running', startedAt: T0 + 2, sessionId: 'sess-1' });

        tick();
        const done = await repos.tasks.transition(t.id, 'completed', {
          result: 'Fixed the bug.',
          warning: 'near budget',
          filesChanged: ['src/auth.ts', 'src/a b/ü.ts'],
          commandsRun: ['npm test', 'echo "hi"'],
          inputTokens: 1200,
          outputTokens: 340,
          cacheReadTokens: 5000,
          cacheCreationTokens: 700,
          costUsd: 0.123456789,
          durationMs: 4321,
          numTurns: 6,
          continuations: 1,
          recoverable: false,
        });
        expect(done.changed).toBe(true);
        const expected = {
          ...running.task,
          status: 'completed',
          result: 'Fixed the bug.',
          warning: 'near budget',
          filesChanged: ['src/auth.ts', 'src/a b/ü.ts'],
          commandsRun: ['npm test', 'echo "hi"'],
          inputTokens: 1200,
          outputTokens: 340,
          cacheReadTokens: 5000,
          cacheCreationTokens: 700,
          costUsd: 0.123456789,
          durationMs: 4321,
          numTurns: 6,
          continuations: 1,
          recoverable: false,
          updatedAt: T0 + 3,
          completedAt: T0 + 3,
        };
        expect(done.task).toEqual(expected);
        expect(await repos.tasks.findById(t.id)).toEqual(expected);
      });

      it('uses explicit start and completion times from the patch', async () => {
        const t = await repos.tasks.create(newTask({ status: 'submitted' }));
        const running = await repos.tasks.transition(t.id, 'running', { startedAt: T0 - 100 });
        expect(running.task.startedAt).toBe(T0 - 100);
        const failed = await repos.tasks.transition(t.id, 'failed', {
          completedAt: T0 + 999,
          errorCode: 'TIMEOUT',
          errorMessage: 'took too long',
          recoverable: true,
        });
        expect(failed.task).toMatchObject({
          status: 'failed',
          completedAt: T0 + 999,
          errorCode: 'TIMEOUT',
          errorMessage: 'took too long',
          recoverable: true,
        });
      });

      it('treats the same terminal status again as a no-op that changes nothing', async () => {
        const t = await repos.tasks.create(newTask({ status: 'running' }));
        tick();
        const first = await repos.tasks.transition(t.id, 'completed', { result: 'first' });
        tick();
        const again = await repos.tasks.transition(t.id, 'completed', { result: 'second' });
        expect(again).toEqual({ changed: false, task: first.task });
        expect((await repos.tasks.findById(t.id))?.result).toBe('first');
      });

      it('rejects an illegal transition and leaves the task as it was', async () => {
        const t = await repos.tasks.create(newTask({ status: 'running' }));
        const done = await repos.tasks.transition(t.id, 'cancelled');
        const attempt = repos.tasks.transition(t.id, 'running', { result: 'nope' });
        await expect(attempt).rejects.toBeInstanceOf(IllegalTransitionError);
        await expect(repos.tasks.transition(t.id, 'completed')).rejects.toMatchObject({
          taskId: t.id,
          from: 'cancelled',
          to: 'completed',
        });
        expect(await repos.tasks.findById(t.id)).toEqual(done.task);
      });

      it('throws a not-found error for an unknown task', async () => {
        await expect(repos.tasks.transition('task_missing', 'running')).rejects.toThrow(
          'task task_missing not found',
        );
        await expect(repos.tasks.transition('task_missing', 'running')).rejects.toBeInstanceOf(
          RecordNotFoundError,
        );
        await expect(repos.tasks.update('task_missing', { result: 'x' })).rejects.toBeInstanceOf(
          RecordNotFoundError,
        );
      });

      it('follows the state machine for every pair of statuses', async () => {
        for (const from of TASK_STATUSES) {
          for (const to of TASK_STATUSES) {
            const t = await repos.tasks.create(newTask({ status: from }));
            const verdict = judgeTransition(from, to);
            const outcome = repos.tasks.transition(t.id, to);
            if (verdict.kind === 'illegal') {
              await expect(outcome, `${from} → ${to}`).rejects.toBeInstanceOf(IllegalTransitionError);
              expect((await repos.tasks.findById(t.id))?.status).toBe(from);
            } else {
              const res = await outcome;
              expect(res.changed, `${from} → ${to}`).toBe(verdict.kind === 'apply');
              expect(res.task.status).toBe(to);
              expect((await repos.tasks.findById(t.id))?.status).toBe(to);
            }
          }
        }
      });

      // Open as many pooled connections as there will be racers, so on a
      // server database the transactions really interleave instead of queueing for a connection.
      const warmPool = (n: number) =>
        Promise.all(Array.from({ length: n }, () => sql`select 1`.execute(database.db)));

      it('lets exactly one of many concurrent identical terminal transitions change the task', async () => {
        const t = await repos.tasks.create(newTask({ status: 'running' }));
        await warmPool(8);
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => repos.tasks.transition(t.id, 'completed', { result: `r${i}` })),
        );
        expect(results.filter((r) => r.changed)).toHaveLength(1);
        const winner = results.find((r) => r.changed);
        expect((await repos.tasks.findById(t.id))?.result).toBe(winner?.task.result);
      });

      it('starts tasks of one tick together, each only from its own agent and attempt, with its session', async () => {
        const tasks = [];
        for (let i = 0; i < 5; i++) {
          const t = await repos.tasks.create(newTask({ prompt: `task ${i}` }));
          await repos.tasks.beginAttempt(t.id, 'agent_1');
          tasks.push(t);
        }
        const [a, b, c, d, e] = tasks.map((t) => t.id) as [string, string, string, string, string];
        await repos.tasks.update(b, { sessionId: 'claude-sess-b' });
        await repos.tasks.transition(e, 'cancelled');
        const guard = { agentId: 'agent_1', attempt: 1 };
        const results = await Promise.all([
          repos.tasks.start(a, guard, tick()),
          repos.tasks.start(b, guard, now),
          repos.tasks.start(c, { agentId: 'agent_1', attempt: 2 }, now),
          repos.tasks.start(d, { agentId: 'agent_2', attempt: 1 }, now),
          repos.tasks.start(e, guard, now),
        ]);
        expect(results.map((r) => r?.id ?? null)).toEqual([a, b, null, null, null]);
        expect(results[0]).toMatchObject({ status: 'running', startedAt: now, updatedAt: now });
        expect(await repos.tasks.findById(a)).toEqual(results[0]);
        expect((await repos.tasks.findById(c))?.status).toBe('submitted');
        expect((await repos.tasks.findById(d))?.status).toBe('submitted');
        expect((await repos.tasks.findById(e))?.status).toBe('cancelled');
        expect((await repos.sessions.findByTask(a)).map((s) => [s.status, s.claudeSessionId])).toEqual([
          ['active', null],
        ]);
        expect((await repos.sessions.findByTask(b)).map((s) => [s.status, s.claudeSessionId])).toEqual([
          ['active', 'claude-sess-b'],
        ]);
        expect(await repos.sessions.findByTask(c)).toEqual([]);
        // Started already: not again.
        expect(await repos.tasks.start(a, guard, tick())).toBeNull();
        expect(await repos.sessions.findByTask(a)).toHaveLength(1);
      });

      it('numbers every send: beginAttempt bumps the attempt and takes the agent, only while resendable', async () => {
        const t = await repos.tasks.create(newTask());
        const first = await repos.tasks.beginAttempt(t.id, 'agent_1');
        expect(first).toMatchObject({ from: 'pending', task: { status: 'submitted', attempt: 1 } });
        const resend = await repos.tasks.beginAttempt(t.id, 'agent_2');
        expect(resend).toMatchObject({ from: 'submitted', task: { attempt: 2, agentId: 'agent_2' } });
        await repos.tasks.transition(t.id, 'running', {}, { agentId: 'agent_2', attempt: 2 });
        expect(await repos.tasks.beginAttempt(t.id, 'agent_1')).toBeUndefined();
        expect((await repos.tasks.findById(t.id))?.attempt).toBe(2);
      });

      it('writes or claims the outbox row in the same transaction as the attempt, and starts none without it', async () => {
        const t = await repos.tasks.create(newTask());
        const entry = {
          agentId: 'agent_1',
          taskId: t.id,
          priority: 'normal' as const,
          payload: t.submission,
          expiresAt: T0 + 60_000,
        };
        const first = await repos.tasks.beginAttempt(t.id, 'agent_1', { kind: 'write', entry, at: T0 + 1 });
        expect(first).toMatchObject({ from: 'pending', task: { status: 'submitted', attempt: 1 } });
        expect(await repos.offlineQueue.findByTask(t.id)).toMatchObject({
          attempts: 1,
          lastAttemptAt: T0 + 1,
        });
        const resend = await repos.tasks.beginAttempt(t.id, 'agent_1', { kind: 'claim', at: T0 + 2 });
        expect(resend).toMatchObject({ task: { attempt: 2 } });
        expect(await repos.offlineQueue.findByTask(t.id)).toMatchObject({
          attempts: 2,
          lastAttemptAt: T0 + 2,
        });
        // The row is another agent's, or gone: no attempt, nothing changed.
        expect(
          await repos.tasks.beginAttempt(t.id, 'agent_2', { kind: 'claim', at: T0 + 3 }),
        ).toBeUndefined();
        await repos.offlineQueue.removeByTask(t.id);
        expect(
          await repos.tasks.beginAttempt(t.id, 'agent_1', { kind: 'claim', at: T0 + 4 }),
        ).toBeUndefined();
        expect(await repos.tasks.findById(t.id)).toMatchObject({ attempt: 2, agentId: 'agent_1' });
        // Not resendable: the row is not written either.
        await repos.tasks.transition(t.id, 'running', {}, { agentId: 'agent_1', attempt: 2 });
        expect(
          await repos.tasks.beginAttempt(t.id, 'agent_1', { kind: 'write', entry, at: T0 + 5 }),
        ).toBeUndefined();
        expect(await repos.offlineQueue.findByTask(t.id)).toBeUndefined();
      });

      it('begins a batch of attempts at once: only the resendable tasks whose row the agent holds, in the order asked', async () => {
        const tasks = [];
        for (let i = 0; i < 4; i++) tasks.push(await repos.tasks.create(newTask()));
        const [a, b, c, d] = tasks as [Task, Task, Task, Task];
        for (const t of tasks) {
          const agentId = t === c ? 'agent_2' : 'agent_1';
          await repos.offlineQueue.enqueue({
            agentId,
            taskId: t.id,
            priority: 'normal',
            payload: t.submission,
            expiresAt: T0 + 60_000,
          });
        }
        await repos.tasks.beginAttempt(b.id, 'agent_1'); // b: submitted already (a resend)
        await repos.tasks.transition(d.id, 'failed'); // d: finished, its row stale
        const begun = await repos.tasks.beginAttempts(
          [b.id, a.id, c.id, d.id, 'task_missing'],
          'agent_1',
          T0 + 7,
        );
        expect(begun.map((x) => [x.task.id, x.from, x.task.attempt, x.task.status])).toEqual([
          [b.id, 'submitted', 2, 'submitted'],
          [a.id, 'pending', 1, 'submitted'],
        ]);
        expect(begun[1]?.entry).toMatchObject({ taskId: a.id, attempts: 1, lastAttemptAt: T0 + 7 });
        expect(begun[1]?.entry.payload).toEqual(a.submission);
        // Another agent's row, and a finished task's, were not touched.
        expect(await repos.offlineQueue.findByTask(c.id)).toMatchObject({ attempts: 0 });
        expect(await repos.offlineQueue.findByTask(d.id)).toMatchObject({ attempts: 0 });
        expect(await repos.tasks.findById(c.id)).toMatchObject({ status: 'pending', attempt: 0 });
        expect(await repos.tasks.beginAttempts([], 'agent_1', T0)).toEqual([]);
        expect(await repos.offlineQueue.taskIdsForAgent('agent_1')).toHaveLength(3);
      });

      it('claims an attempt begun elsewhere only while the task is submitted to that agent at that attempt', async () => {
        const t = await repos.tasks.create(newTask());
        const entry = {
          agentId: 'agent_1',
          taskId: t.id,
          priority: 'normal' as const,
          payload: t.submission,
          expiresAt: T0 + 60_000,
        };
        await repos.tasks.beginAttempt(t.id, 'agent_1', { kind: 'write', entry, at: T0 + 1 });
        // Counted once, by the write; the claim marks when it went out.
        expect(await repos.offlineQueue.claimBegun(t.id, 'agent_1', 1, T0 + 2)).toMatchObject({
          attempts: 1,
          lastAttemptAt: T0 + 2,
          payload: t.submission,
        });
        expect(await repos.offlineQueue.claimBegun(t.id, 'agent_2', 1, T0 + 3)).toBeUndefined();
        expect(await repos.offlineQueue.claimBegun(t.id, 'agent_1', 2, T0 + 3)).toBeUndefined();
        // Moved on (queued after a refusal, or a newer attempt): the older notice sends nothing.
        await repos.tasks.transition(t.id, 'queued', {}, { agentId: 'agent_1', attempt: 1 });
        expect(await repos.offlineQueue.claimBegun(t.id, 'agent_1', 1, T0 + 4)).toBeUndefined();
        await repos.tasks.beginAttempt(t.id, 'agent_1', { kind: 'claim', at: T0 + 5 });
        expect(await repos.offlineQueue.claimBegun(t.id, 'agent_1', 1, T0 + 6)).toBeUndefined();
        expect(await repos.offlineQueue.claimBegun(t.id, 'agent_1', 2, T0 + 6)).toBeDefined();
        await repos.offlineQueue.removeByTask(t.id);
        expect(await repos.offlineQueue.claimBegun(t.id, 'agent_1', 2, T0 + 7)).toBeUndefined();
      });

      it('applies a guarded transition only for the owning agent at the attempt in force (one compare-and-set)', async () => {
        const t = await repos.tasks.create(newTask());
        await repos.tasks.beginAttempt(t.id, 'agent_1');
        await repos.tasks.beginAttempt(t.id, 'agent_1'); // attempt 2 is in force
        const stale = await repos.tasks.transition(t.id, 'running', {}, { agentId: 'agent_1', attempt: 1 });
        expect(stale).toMatchObject({ changed: false, stale: 'attempt', task: { status: 'submitted' } });
        const foreign = await repos.tasks.transition(t.id, 'running', {}, { agentId: 'agent_9', attempt: 2 });
        expect(foreign).toMatchObject({ changed: false, stale: 'agent', task: { status: 'submitted' } });
        const ok = await repos.tasks.transition(t.id, 'running', {}, { agentId: 'agent_1', attempt: 2 });
        expect(ok).toMatchObject({ changed: true, task: { status: 'running' } });
        const lateStale = await repos.tasks.transition(
          t.id,
          'completed',
          { result: 'from attempt 1' },
          { agentId: 'agent_1', attempt: 1 },
        );
        expect(lateStale.changed).toBe(false);
        expect((await repos.tasks.findById(t.id))?.status).toBe('running');
        const done = await repos.tasks.transition(
          t.id,
          'completed',
          { result: 'r' },
          { agentId: 'agent_1', attempt: 2 },
        );
        expect(done.changed).toBe(true);
        // A terminal task judges a repeat as before, whoever sends it: a no-op, not stale.
        const again = await repos.tasks.transition(t.id, 'completed', {}, { agentId: 'agent_1', attempt: 1 });
        expect(again).toEqual({ changed: false, task: done.task });
      });

      it('lets no stale attempt win a race with the current one', async () => {
        const t = await repos.tasks.create(newTask());
        await repos.tasks.beginAttempt(t.id, 'agent_1');
        await repos.tasks.beginAttempt(t.id, 'agent_1');
        await repos.tasks.transition(t.id, 'running', {}, { agentId: 'agent_1', attempt: 2 });
        const racers = [1, 2, 1, 2, 1].map((attempt) =>
          repos.tasks.transition(
            t.id,
            'completed',
            { result: `a${attempt}` },
            { agentId: 'agent_1', attempt },
          ),
        );
        const results = await Promise.all(racers);
        expect(results.filter((r) => r.changed)).toHaveLength(1);
        expect((await repos.tasks.findById(t.id))?.result).toBe('a2');
      });

      it('lets exactly one of racing different terminal transitions win; the rest are illegal', async () => {
        const t = await repos.tasks.create(newTask({ status: 'running' }));
        const targets: TaskStatus[] = [
          'completed',
          'failed',
          'cancelled',
          'completed',
          'failed',
          'cancelled',
        ];
        const settled = await Promise.allSettled(targets.map((to) => repos.tasks.transition(t.id, to)));
        const changed = settled.filter((s) => s.status === 'fulfilled' && s.value.changed);
        expect(changed).toHaveLength(1);
        const final = (await repos.tasks.findById(t.id))?.status;
        for (const [i, s] of settled.entries()) {
          if (s.status === 'rejected') expect(s.reason).toBeInstanceOf(IllegalTransitionError);
          else expect(targets[i]).toBe(final);
        }
      });

      it('updates non-status fields without touching the status', async () => {
        const t = await repos.tasks.create(newTask({ status: 'running' }));
        tick(5);
        const u = await repos.tasks.update(t.id, {
          progressMessageTs: '1.5',
          recoverable: false,
          filesChanged: ['a'],
        });
        expect(u).toEqual({
          ...t,
          progressMessageTs: '1.5',
          recoverable: false,
          filesChanged: ['a'],
          updatedAt: T0 + 5,
        });
        const cleared = await repos.tasks.update(t.id, { recoverable: null, threadTs: null });
        expect(cleared).toMatchObject({ recoverable: null, threadTs: null, progressMessageTs: '1.5' });
      });

      it('stores the workspace report and the pull request link', async () => {
        const t = await repos.tasks.create(newTask({ status: 'running' }));
        const workspace = {
          mode: 'worktree' as const,
          ownerTaskId: t.id,
          branch: `bematic/${t.id}`,
          base: 'main',
          baseCommit: 'a'.repeat(40),
          commit: 'b'.repeat(40),
          files: [{ path: 'src/a.ts', added: 3, removed: 1, binary: false }],
          notices: ['HEAD_MOVED' as const],
        };
        await repos.tasks.transition(t.id, 'completed', { workspace, completedAt: T0 });
        await repos.tasks.update(t.id, { pullRequestUrl: 'https://github.com/o/r/pull/7' });
        expect(await repos.tasks.findById(t.id)).toMatchObject({
          workspace,
          pullRequestUrl: 'https://github.com/o/r/pull/7',
        });
      });

      it('deletes a task together with its sessions and queue entry', async () => {
        const t = await repos.tasks.create(newTask());
        await repos.sessions.create({ taskId: t.id });
        await repos.offlineQueue.enqueue({
          agentId: 'agent_1',
          taskId: t.id,
          priority: 'normal',
          payload: t.submission,
          expiresAt: T0 + 1000,
        });
        expect(await repos.tasks.delete(t.id)).toBe(true);
        expect(await repos.tasks.delete(t.id)).toBe(false);
        expect(await repos.tasks.findById(t.id)).toBeUndefined();
        expect(await repos.sessions.findByTask(t.id)).toEqual([]);
        expect(await repos.offlineQueue.findByTask(t.id)).toBeUndefined();
      });

      it('drops NUL characters from free text alike on every dialect', async () => {
        const t = await repos.tasks.create(
          newTask({ prompt: 'a\u0000b', submission: submission({ prompt: 'a\u0000b' }) }),
        );
        expect(t.prompt).toBe('ab');
        expect(t.submission.prompt).toBe('a\u0000b');
        const done = await repos.tasks.transition(t.id, 'failed', {
          result: 'x\u0000y',
          errorMessage: '\u0000e',
          warning: 'w\u0000',
        });
        expect(done.task).toMatchObject({ result: 'xy', errorMessage: 'e', warning: 'w' });
      });

      it('stores large epoch timestamps and fractional costs exactly', async () => {
        const t = await repos.tasks.create(newTask({ restoredAt: 2 ** 52 + 1 }));
        await repos.tasks.update(t.id, { costUsd: 1 / 3, inputTokens: 2 ** 40 });
        const found = await repos.tasks.findById(t.id);
        expect(found?.restoredAt).toBe(2 ** 52 + 1);
        expect(found?.costUsd).toBe(1 / 3);
        expect(found?.inputTokens).toBe(2 ** 40);
        expect(typeof found?.createdAt).toBe('number');
      });
    });

    describe('sessions', () => {
      it('creates active sessions, lists them per task in order, and completes them', async () => {
        const t = await repos.tasks.create(newTask());
        const s1 = await repos.sessions.create({ taskId: t.id });
        tick();
        const s2 = await repos.sessions.create({ taskId: t.id, claudeSessionId: 'claude-1' });
        await repos.sessions.create({ taskId: (await repos.tasks.create(newTask())).id });
        expect(s1).toEqual({
          id: expect.stringMatching(/^sess_[0-9a-f]{16}$/),
          taskId: t.id,
          claudeSessionId: null,
          status: 'active',
          inputTokens: 0,
          outputTokens: 0,
          costUsd: 0,
          durationMs: 0,
          createdAt: T0,
          completedAt: null,
        });
        expect(await repos.sessions.findByTask(t.id)).toEqual([s1, s2]);

        tick(9);
        const done = await repos.sessions.complete(s2.id, {
          status: 'completed',
          inputTokens: 10,
          outputTokens: 20,
          costUsd: 0.5,
          durationMs: 300,
        });
        expect(done).toEqual({
          ...s2,
          status: 'completed',
          claudeSessionId: 'claude-1',
          inputTokens: 10,
          outputTokens: 20,
          costUsd: 0.5,
          durationMs: 300,
          completedAt: T0 + 10,
        });
        const failed = await repos.sessions.complete(s1.id, {
          status: 'failed',
          claudeSessionId: 'claude-0',
          inputTokens: 1,
          outputTokens: 2,
          costUsd: 0,
          durationMs: 3,
        });
        expect(failed.claudeSessionId).toBe('claude-0');
        expect(await repos.sessions.findByTask(t.id)).toEqual([failed, done]);
        await expect(
          repos.sessions.complete('sess_missing', {
            status: 'failed',
            inputTokens: 0,
            outputTokens: 0,
            costUsd: 0,
            durationMs: 0,
          }),
        ).rejects.toBeInstanceOf(RecordNotFoundError);
      });

      it('refuses a session for a task that does not exist', async () => {
        await expect(repos.sessions.create({ taskId: 'task_missing' })).rejects.toThrow();
      });
    });

    describe('users', () => {
      it('upserts, keeps the name when omitted, sets roles, and lists', async () => {
        const u = await repos.users.upsert({ id: 'U2', name: 'Ada', role: 'developer' });
        expect(u).toEqual({
          id: 'U2',
          name: 'Ada',
          role: 'developer',
          defaultProjectId: null,
          createdAt: T0,
          updatedAt: T0,
        });
        tick();
        const again = await repos.users.upsert({ id: 'U2', role: 'admin' });
        expect(again).toEqual({ ...u, role: 'admin', updatedAt: T0 + 1 });
        const renamed = await repos.users.upsert({ id: 'U2', name: null, role: 'admin' });
        expect(renamed.name).toBeNull();
        await repos.users.upsert({ id: 'U1', role: 'viewer' });
        tick();
        const viewer = await repos.users.setRole('U2', 'viewer');
        expect(viewer).toMatchObject({ role: 'viewer', updatedAt: T0 + 2, createdAt: T0 });
        expect(await repos.users.findById('U2')).toEqual(viewer);
        expect(await repos.users.findById('U9')).toBeUndefined();
        expect((await repos.users.list()).map((x) => [x.id, x.role])).toEqual([
          ['U1', 'viewer'],
          ['U2', 'viewer'],
        ]);
        await expect(repos.users.setRole('U9', 'admin')).rejects.toBeInstanceOf(RecordNotFoundError);
      });

      it("remembers a person's default project for direct messages", async () => {
        await repos.users.upsert({ id: 'U3', role: 'developer' });
        expect((await repos.users.setDefaultProject('U3', 'proj_1')).defaultProjectId).toBe('proj_1');
        const again = await repos.users.upsert({ id: 'U3', role: 'admin' });
        expect(again.defaultProjectId).toBe('proj_1');
        expect((await repos.users.setDefaultProject('U3', null)).defaultProjectId).toBeNull();
        await expect(repos.users.setDefaultProject('U9', 'p')).rejects.toBeInstanceOf(RecordNotFoundError);
      });
    });

    describe('audit log', () => {
      it('logs with defaults and round-trips nested details', async () => {
        const plain = await repos.audit.log({ action: 'task.created', actor: 'U1' });
        expect(plain).toEqual({
          id: expect.any(Number),
          ts: T0,
          action: 'task.created',
          actor: 'U1',
          resourceType: null,
          resourceId: null,
          details: {},
        });
        const details = { reason: 'budget', nested: { list: [1, 'two', null, true], quote: 'a"b' }, n: 1.5 };
        const full = await repos.audit.log({
          action: 'task.archived',
          actor: 'system',
          ts: T0 + 7,
          resourceType: 'task',
          resourceId: 'task_1',
          details,
        });
        expect(full).toMatchObject({ ts: T0 + 7, resourceType: 'task', resourceId: 'task_1', details });
        expect(await repos.audit.list({ resourceId: 'task_1' })).toEqual([full]);
      });

      it('lists newest first with filters and a limit', async () => {
        for (let i = 0; i < 5; i++) {
          tick();
          await repos.audit.log({ action: i % 2 ? 'auth.failed' : 'task.created', actor: `U${i % 3}` });
        }
        const all = await repos.audit.list();
        expect(all.map((e) => e.ts)).toEqual([T0 + 5, T0 + 4, T0 + 3, T0 + 2, T0 + 1]);
        expect((await repos.audit.list({ action: 'auth.failed' })).map((e) => e.ts)).toEqual([
          T0 + 4,
          T0 + 2,
        ]);
        expect((await repos.audit.list({ actor: 'U0' })).map((e) => e.ts)).toEqual([T0 + 4, T0 + 1]);
        expect((await repos.audit.list({ action: 'task.created', actor: 'U2' })).map((e) => e.ts)).toEqual([
          T0 + 3,
        ]);
        expect(await repos.audit.list({ limit: 2 })).toEqual(all.slice(0, 2));
      });

      it('returns at most 100 entries unless asked for more', async () => {
        await database.db
          .insertInto('audit_logs')
          .values(
            Array.from({ length: 120 }, (_, i) => ({ ts: T0 + i, action: 'x', actor: 'a', details: '{}' })),
          )
          .execute();
        expect(await repos.audit.list()).toHaveLength(100);
        expect(await repos.audit.list({ limit: 500 })).toHaveLength(120);
      });
    });

    describe('offline queue', () => {
      const enqueue = (
        taskId: string,
        priority: TaskSubmission['priority'],
        enqueuedAt: number,
        agentId = 'agent_1',
      ) =>
        repos.offlineQueue.enqueue({
          agentId,
          taskId,
          priority,
          payload: submission({ taskId, priority }),
          enqueuedAt,
          expiresAt: enqueuedAt + 1000,
        });

      it("lists the rows of many agents that were never sent or whose last send is old, and no one else's", async () => {
        await enqueue('t_new', 'normal', T0, 'agent_a');
        await repos.offlineQueue.enqueue(
          {
            agentId: 'agent_b',
            taskId: 't_recent',
            priority: 'normal',
            payload: submission(),
            expiresAt: T0 + 1000,
          },
          T0 + 10,
        );
        await repos.offlineQueue.enqueue(
          {
            agentId: 'agent_c',
            taskId: 't_old',
            priority: 'normal',
            payload: submission(),
            expiresAt: T0 + 1000,
          },
          T0,
        );
        await enqueue('t_elsewhere', 'normal', T0, 'agent_d');
        // More agents than one statement takes: the rows are found in every part of the list.
        const many = Array.from({ length: 1203 }, (_, i) => `idle_${i}`);
        const ids = [...many.slice(0, 600), 'agent_a', ...many.slice(600), 'agent_b', 'agent_c'];
        const rows = await repos.offlineQueue.listUnsent(ids, T0 + 5);
        expect(rows.map((r) => r.taskId).sort()).toEqual(['t_new', 't_old']);
        expect(rows.find((r) => r.taskId === 't_old')).toMatchObject({ agentId: 'agent_c', attempts: 1 });
        expect(await repos.offlineQueue.listUnsent([], T0 + 5)).toEqual([]);
        expect((await repos.offlineQueue.listUnsent(['agent_b'], T0 + 10)).map((r) => r.taskId)).toEqual([
          't_recent',
        ]);
      });

      it('enqueues one entry per task and reads it back', async () => {
        const e = await repos.offlineQueue.enqueue({
          agentId: 'agent_1',
          taskId: 'task_1',
          priority: 'high',
          payload: submission({ taskId: 'task_1', priority: 'high', maxBudgetUsd: 3 }),
          expiresAt: T0 + 60_000,
        });
        expect(e).toEqual({
          id: expect.any(Number),
          agentId: 'agent_1',
          taskId: 'task_1',
          priority: 'high',
          payload: submission({ taskId: 'task_1', priority: 'high', maxBudgetUsd: 3 }),
          enqueuedAt: T0,
          expiresAt: T0 + 60_000,
          attempts: 0,
          lastAttemptAt: null,
        });
        expect(await repos.offlineQueue.findByTask('task_1')).toEqual(e);
        expect(await repos.offlineQueue.findByTask('task_2')).toBeUndefined();
      });

      it('lists an agent’s entries urgent first, then oldest first', async () => {
        await enqueue('low-old', 'low', T0 + 1);
        await enqueue('normal-new', 'normal', T0 + 9);
        await enqueue('urgent-new', 'urgent', T0 + 8);
        await enqueue('normal-old', 'normal', T0 + 2);
        await enqueue('high', 'high', T0 + 5);
        await enqueue('urgent-old', 'urgent', T0 + 3);
        await enqueue('other-agent', 'urgent', T0, 'agent_2');
        const ids = (await repos.offlineQueue.listForAgent('agent_1')).map((e) => e.taskId);
        expect(ids).toEqual(['urgent-old', 'urgent-new', 'high', 'normal-old', 'normal-new', 'low-old']);
        expect(await repos.offlineQueue.taskIdsForAgent('agent_1')).toEqual(ids);
        expect((await repos.offlineQueue.listForAgent('agent_1', 2)).map((e) => e.taskId)).toEqual([
          'urgent-old',
          'urgent-new',
        ]);
        expect(await repos.offlineQueue.listForAgent('agent_9')).toEqual([]);
        expect(await repos.offlineQueue.countByAgent()).toEqual({ agent_1: 6, agent_2: 1 });
      });

      it('tells which of the tasks asked about have a row, whichever agent it waits for', async () => {
        await enqueue('task_1', 'low', T0 + 1);
        await enqueue('task_2', 'normal', T0 + 2, 'agent_2');
        expect(await repos.offlineQueue.withRows(['task_1', 'task_2', 'task_3'])).toEqual(
          new Set(['task_1', 'task_2']),
        );
        expect(await repos.offlineQueue.withRows([])).toEqual(new Set());
      });

      it('tells which of the agents asked about have rows waiting', async () => {
        for (const id of ['agent_1', 'agent_2', 'agent_3'])
          await repos.agents.upsert({ id, status: 'online' });
        await enqueue('task_1', 'low', T0 + 1);
        await enqueue('task_2', 'normal', T0 + 2);
        await enqueue('task_3', 'normal', T0 + 3, 'agent_3');
        const waiting = await repos.offlineQueue.agentsWithWaiting([
          'agent_1',
          'agent_2',
          'agent_3',
          'agent_9',
        ]);
        expect(waiting.sort()).toEqual(['agent_1', 'agent_3']);
        expect(await repos.offlineQueue.agentsWithWaiting(['agent_2'])).toEqual([]);
        expect(await repos.offlineQueue.agentsWithWaiting([])).toEqual([]);
      });

      it('replaces agent, priority, payload and expiry on re-enqueue, keeping its place and attempts', async () => {
        const first = await enqueue('task_1', 'low', T0 + 1);
        await repos.offlineQueue.claim('task_1', 'agent_1', T0 + 2);
        const again = await repos.offlineQueue.enqueue({
          agentId: 'agent_2',
          taskId: 'task_1',
          priority: 'urgent',
          payload: submission({ taskId: 'task_1', priority: 'urgent', prompt: 'changed' }),
          expiresAt: T0 + 5000,
        });
        expect(again).toEqual({
          ...first,
          agentId: 'agent_2',
          priority: 'urgent',
          payload: submission({ taskId: 'task_1', priority: 'urgent', prompt: 'changed' }),
          expiresAt: T0 + 5000,
          attempts: 1,
          lastAttemptAt: T0 + 2,
        });
        expect(await repos.offlineQueue.listForAgent('agent_1')).toEqual([]);
        expect(await repos.offlineQueue.countByAgent()).toEqual({ agent_2: 1 });
        const moved = await enqueue('task_1', 'urgent', T0 + 100, 'agent_2');
        expect(moved.enqueuedAt).toBe(T0 + 100);
      });

      it('counts delivery attempts by claims for the row’s agent only, and removes entries', async () => {
        await enqueue('task_1', 'normal', T0);
        expect(await repos.offlineQueue.claim('task_1', 'agent_1', T0 + 10)).toMatchObject({ attempts: 1 });
        await repos.offlineQueue.claim('task_1', 'agent_1', T0 + 20);
        expect(await repos.offlineQueue.claim('task_missing', 'agent_1', T0 + 20)).toBeUndefined();
        expect(await repos.offlineQueue.claim('task_1', 'agent_2', T0 + 30)).toBeUndefined();
        expect(await repos.offlineQueue.findByTask('task_1')).toMatchObject({
          attempts: 2,
          lastAttemptAt: T0 + 20,
        });
        expect(await repos.offlineQueue.removeByTask('task_1')).toBe(true);
        expect(await repos.offlineQueue.removeByTask('task_1')).toBe(false);
        expect(await repos.offlineQueue.countByAgent()).toEqual({});
      });

      it('takes expired entries (expiry inclusive) exactly once', async () => {
        await enqueue('a', 'low', T0); // expires T0 + 1000
        await enqueue('b', 'urgent', T0 + 500); // expires T0 + 1500
        await enqueue('c', 'normal', T0 + 1); // expires T0 + 1001
        await enqueue('d', 'high', T0 + 2, 'agent_2'); // expires T0 + 1002
        const taken = await repos.offlineQueue.takeExpired(T0 + 1001);
        expect(taken.map((e) => e.taskId)).toEqual(['c', 'a']);
        expect(await repos.offlineQueue.takeExpired(T0 + 1001)).toEqual([]);
        expect((await repos.offlineQueue.listForAgent('agent_1')).map((e) => e.taskId)).toEqual(['b']);

        const racing = await Promise.all([
          repos.offlineQueue.takeExpired(T0 + 2000),
          repos.offlineQueue.takeExpired(T0 + 2000),
          repos.offlineQueue.takeExpired(T0 + 2000),
        ]);
        expect(
          racing
            .flat()
            .map((e) => e.taskId)
            .sort(),
        ).toEqual(['b', 'd']);
        expect(await repos.offlineQueue.countByAgent()).toEqual({});
      });
    });

    describe('api keys', () => {
      const key = (over: { id?: string; prefix?: string; agentId?: string; keyHash?: string } = {}) =>
        repos.apiKeys.create({
          agentId: over.agentId ?? 'agent_1',
          prefix: over.prefix ?? 'bmk_3f9a',
          keyHash: over.keyHash ?? `hash-${Math.random()}`,
          label: 'laptop',
          expiresAt: T0 + 86_400_000,
          ...(over.id ? { id: over.id } : {}),
        });

      it('creates keys and finds them by prefix and agent', async () => {
        const k1 = await key({ keyHash: 'h1' });
        expect(k1).toEqual({
          id: expect.stringMatching(/^key_[0-9a-f]{16}$/),
          agentId: 'agent_1',
          prefix: 'bmk_3f9a',
          keyHash: 'h1',
          label: 'laptop',
          createdAt: T0,
          expiresAt: T0 + 86_400_000,
          revokedAt: null,
          lastUsedAt: null,
        });
        tick();
        const k2 = await key({ id: 'key_given', keyHash: 'h2' });
        tick();
        const k3 = await repos.apiKeys.create({
          agentId: 'agent_2',
          prefix: 'bmk_0000',
          keyHash: 'h3',
          label: null,
          expiresAt: null,
        });
        expect(k3).toMatchObject({ label: null, expiresAt: null });
        expect(await repos.apiKeys.findByPrefix('bmk_3f9a')).toEqual([k1, k2]);
        expect(await repos.apiKeys.findByPrefix('bmk_ffff')).toEqual([]);
        expect(await repos.apiKeys.list('agent_2')).toEqual([k3]);
        expect(await repos.apiKeys.list()).toEqual([k1, k2, k3]);
      });

      it('rejects a duplicate key hash', async () => {
        await key({ keyHash: 'same' });
        await expect(key({ keyHash: 'same' })).rejects.toBeInstanceOf(DuplicateRecordError);
      });

      it('revokes once, keeping the first revocation time, and records use', async () => {
        const k = await key();
        expect(await repos.apiKeys.revoke(k.id, T0 + 10)).toBe(true);
        expect(await repos.apiKeys.revoke(k.id, T0 + 20)).toBe(false);
        expect(await repos.apiKeys.revoke('key_missing', T0)).toBe(false);
        await repos.apiKeys.touch(k.id, T0 + 30);
        const [found] = await repos.apiKeys.findByPrefix(k.prefix);
        expect(found).toEqual({ ...k, revokedAt: T0 + 10, lastUsedAt: T0 + 30 });
      });
    });

    describe('archived tasks', () => {
      it('creates, finds, lists newest first and deletes archives', async () => {
        const task = await repos.tasks.create(newTask());
        const a1 = await repos.archivedTasks.create({
          originalId: task.id,
          taskData: JSON.stringify(task),
          reason: 'retention',
          metadata: { days: 30, by: { actor: 'system' } },
        });
        expect(a1).toEqual({
          id: expect.stringMatching(/^archive_[0-9a-f]{16}$/),
          originalId: task.id,
          taskData: JSON.stringify(task),
          reason: 'retention',
          metadata: { days: 30, by: { actor: 'system' } },
          archivedAt: T0,
        });
        expect(JSON.parse((await repos.archivedTasks.findById(a1.id))?.taskData ?? 'null')).toEqual(task);
        const a2 = await repos.archivedTasks.create({
          id: 'archive_given',
          originalId: task.id,
          taskData: '{}',
          reason: 'manual',
          metadata: {},
          archivedAt: T0 + 5,
        });
        const other = await repos.archivedTasks.create({
          originalId: 'task_other',
          taskData: '{}',
          reason: 'manual',
          metadata: {},
          archivedAt: T0 + 2,
        });
        await expect(
          repos.archivedTasks.create({
            id: 'archive_given',
            originalId: 'x',
            taskData: '{}',
            reason: 'r',
            metadata: {},
          }),
        ).rejects.toBeInstanceOf(DuplicateRecordError);
        expect(await repos.archivedTasks.findByOriginalId(task.id)).toEqual(a2);
        expect(await repos.archivedTasks.findByOriginalId('task_none')).toBeUndefined();
        expect(await repos.archivedTasks.list()).toEqual([a2, other, a1]);
        expect(await repos.archivedTasks.list(1)).toEqual([a2]);
        expect(await repos.archivedTasks.delete(a2.id)).toBe(true);
        expect(await repos.archivedTasks.delete(a2.id)).toBe(false);
        expect(await repos.archivedTasks.findById(a2.id)).toBeUndefined();
        expect(await repos.archivedTasks.findByOriginalId(task.id)).toEqual(a1);
      });
    });

    describe('agents', () => {
      it('upserts, keeping fields that are not given', async () => {
        const a = await repos.agents.upsert({
          id: 'agent_1',
          hostname: 'box',
          version: '0.1.0',
          status: 'online',
          lastSeenAt: T0,
        });
        expect(a).toEqual({
          id: 'agent_1',
          hostname: 'box',
          version: '0.1.0',
          status: 'online',
          lastSeenAt: T0,
          createdAt: T0,
          instanceId: null,
          health: null,
        });
        tick(100);
        const off = await repos.agents.upsert({ id: 'agent_1', status: 'offline' });
        expect(off).toEqual({ ...a, status: 'offline' });
        const back = await repos.agents.upsert({
          id: 'agent_1',
          status: 'online',
          version: '0.2.0',
          lastSeenAt: T0 + 100,
        });
        expect(back).toEqual({ ...a, version: '0.2.0', lastSeenAt: T0 + 100 });
        const bare = await repos.agents.upsert({ id: 'agent_0', status: 'offline' });
        expect(bare).toEqual({
          id: 'agent_0',
          hostname: null,
          version: null,
          status: 'offline',
          lastSeenAt: null,
          createdAt: T0 + 100,
          instanceId: null,
          health: null,
        });
        expect(await repos.agents.findById('agent_1')).toEqual(back);
        expect(await repos.agents.findById('agent_9')).toBeUndefined();
        expect(await repos.agents.list()).toEqual([bare, back]);
      });

      it('records which instance holds an agent; a release by an instance that lost it keeps the new claim', async () => {
        for (const id of ['a1', 'a2', 'a3']) await repos.agents.upsert({ id, status: 'online' });
        await repos.agents.claim('a1', 'cloud-a', T0 + 1);
        await repos.agents.claim('a2', 'cloud-b', T0 + 2);
        await repos.agents.claim('a3', 'cloud-c', T0 + 3);
        expect(await repos.agents.findById('a1')).toMatchObject({
          instanceId: 'cloud-a',
          status: 'online',
          lastSeenAt: T0 + 1,
        });
        // a2 moved from cloud-b to cloud-a; cloud-b notices the close later.
        await repos.agents.claim('a2', 'cloud-a', T0 + 4);
        await repos.agents.release('a2', 'cloud-b');
        expect(await repos.agents.findById('a2')).toMatchObject({ instanceId: 'cloud-a', status: 'online' });
        await repos.agents.release('a1', 'cloud-a');
        expect(await repos.agents.findById('a1')).toMatchObject({ instanceId: null });

        expect(await repos.agents.releaseAllBut(['cloud-a'])).toEqual(['a3']);
        expect(await repos.agents.findById('a3')).toMatchObject({ instanceId: null, status: 'offline' });
        expect(await repos.agents.findById('a2')).toMatchObject({ instanceId: 'cloud-a', status: 'online' });
        expect(await repos.agents.releaseAllBut([])).toEqual(['a2']);
      });

      describe('listing', () => {
        /** 23 online and 24 offline agents, ids deliberately not in insertion order. */
        const seed = async () => {
          const ids: string[] = [];
          for (let i = 0; i < 47; i++) {
            const id = `agent-${String((i * 17) % 47).padStart(2, '0')}`;
            await repos.agents.upsert({
              id,
              hostname: `Host-${i % 5}.example`,
              status: i % 2 === 0 ? 'offline' : 'online',
              lastSeenAt: T0 + i,
            });
            ids.push(id);
          }
          return ids;
        };
        /** The listing's order, computed here from the rows themselves. */
        const expected = async (keep: (a: AgentRecord) => boolean = () => true) =>
          (await repos.agents.list())
            .filter(keep)
            .sort((a, b) => (a.status === b.status ? (a.id < b.id ? -1 : 1) : a.status === 'online' ? -1 : 1))
            .map((a) => a.id);
        const walk = async (q: Omit<AgentListingQuery, 'after'>) => {
          const seen: string[] = [];
          const sizes: number[] = [];
          let after: AgentPosition | undefined;
          for (let pages = 0; pages < 100; pages++) {
            const { rows, next } = await repos.agents.page({ ...q, ...(after ? { after } : {}) });
            expect(rows.length).toBeLessThanOrEqual(q.limit);
            seen.push(...rows.map((r) => r.id));
            sizes.push(rows.length);
            if (!next) return { seen, sizes };
            after = next;
          }
          throw new Error('the listing never ended');
        };

        it('pages through every agent exactly once, online first then by id, in index-sized pages', async () => {
          await seed();
          const all = await expected();
          expect(all).toHaveLength(47);
          const { seen, sizes } = await walk({ limit: 5 });
          expect(seen).toEqual(all);
          expect(sizes).toEqual([5, 5, 5, 5, 5, 5, 5, 5, 5, 2]);
          // A page ending exactly at the last online agent still leads on to the offline ones.
          const online = all.filter((_, i) => i < 23);
          const first = await repos.agents.page({ limit: 23 });
          expect(first.rows.map((r) => r.id)).toEqual(online);
          expect(first.next).toEqual({ online: true, id: online[22] });
          const rest = await repos.agents.page({ limit: 100, ...(first.next ? { after: first.next } : {}) });
          expect(rest.rows.map((r) => r.id)).toEqual(all.slice(23));
          expect(rest.next).toBeNull();
          expect((await repos.agents.page({ limit: 47 })).next).toBeNull();
        });

        it('keeps its place while agents come and go: nothing shown twice, a new agent after the cursor still comes', async () => {
          await seed();
          const first = await repos.agents.page({ limit: 10 });
          const after = first.next ?? undefined;
          expect(after).toMatchObject({ online: true });
          await repos.agents.upsert({ id: 'agent-00a', status: 'online' }); // before the cursor: not shown
          await repos.agents.upsert({ id: 'agent-zz', status: 'online' }); // after it: shown
          const seen = [...first.rows.map((r) => r.id)];
          let next = after;
          while (next) {
            const page = await repos.agents.page({ limit: 10, after: next });
            seen.push(...page.rows.map((r) => r.id));
            next = page.next ?? undefined;
          }
          expect(new Set(seen).size).toBe(seen.length);
          expect(seen).toContain('agent-zz');
          expect(seen).not.toContain('agent-00a');
          expect(seen).toHaveLength(48);
        });

        it('filters by status, and by a piece of the id or host name in any case', async () => {
          await seed();
          expect((await walk({ limit: 4, status: 'online' })).seen).toEqual(
            await expected((a) => a.status === 'online'),
          );
          expect((await walk({ limit: 4, status: 'offline' })).seen).toEqual(
            await expected((a) => a.status === 'offline'),
          );
          // A cursor from the online part with the offline filter starts at the first offline agent.
          const offline = await repos.agents.page({
            limit: 3,
            status: 'offline',
            after: { online: true, id: 'agent-99' },
          });
          expect(offline.rows.map((r) => r.id)).toEqual(
            (await expected((a) => a.status === 'offline')).slice(0, 3),
          );
          expect(
            (await repos.agents.page({ limit: 3, status: 'online', after: { online: false, id: '' } })).rows,
          ).toEqual([]);

          expect((await walk({ limit: 4, text: 'HOST-3' })).seen).toEqual(
            await expected((a) => a.hostname?.startsWith('Host-3') ?? false),
          );
          expect((await walk({ limit: 2, text: 'ENT-1', status: 'online' })).seen).toEqual(
            await expected((a) => a.status === 'online' && a.id.startsWith('agent-1')),
          );
          // LIKE's wildcards in the text match only themselves.
          await repos.agents.upsert({ id: 'odd_100%', status: 'offline' });
          expect((await walk({ limit: 4, text: '_100%' })).seen).toEqual(['odd_100%']);
          expect((await walk({ limit: 4, text: '%' })).seen).toEqual(['odd_100%']);
          expect((await walk({ limit: 4, text: 'no such agent' })).seen).toEqual([]);
        });

        it('bounds the agents a text search tests per request, and resumes where it stopped', async () => {
          await seed();
          const matches = await expected((a) => a.hostname === 'Host-1.example');
          expect(matches.length).toBeGreaterThan(5);
          const { seen, sizes } = await walk({ limit: 3, text: 'host-1', scanLimit: 4 });
          expect(seen).toEqual(matches);
          // 47 agents, at most 4 tested per page and status: more pages than matches, some of them short.
          expect(sizes.length).toBeGreaterThanOrEqual(Math.ceil(47 / 4));
          expect(sizes.some((n) => n < 3)).toBe(true);
          const one = await repos.agents.page({ limit: 3, text: 'no such agent', scanLimit: 4 });
          expect(one).toEqual({ rows: [], next: { online: true, id: (await expected())[3] } });
        });

        it('counts online and offline agents', async () => {
          expect(await repos.agents.counts()).toEqual({ online: 0, offline: 0, total: 0 });
          await seed();
          expect(await repos.agents.counts()).toEqual({ online: 23, offline: 24, total: 47 });
        });

        it('lists an agent a task waits for that never connected, and leaves a known agent as it is', async () => {
          await repos.agents.upsert({ id: 'known', hostname: 'box', status: 'online', lastSeenAt: T0 });
          const queue = (taskId: string, agentId: string) =>
            repos.offlineQueue.enqueue({
              agentId,
              taskId,
              priority: 'normal',
              payload: submission({ taskId }),
              enqueuedAt: T0 + 5,
              expiresAt: T0 + 60_000,
            });
          await queue('task_1', 'known');
          await queue('task_2', 'never-seen');
          await queue('task_3', 'never-seen');
          // Re-queued for yet another agent: that one is known now too.
          await queue('task_3', 'moved-to');
          expect(await repos.agents.findById('known')).toMatchObject({ status: 'online', hostname: 'box' });
          expect(await repos.agents.findById('never-seen')).toEqual({
            id: 'never-seen',
            hostname: null,
            version: null,
            status: 'offline',
            lastSeenAt: null,
            createdAt: T0 + 5,
            instanceId: null,
            health: null,
          });
          expect((await repos.agents.page({ limit: 10 })).rows.map((r) => r.id)).toEqual([
            'known',
            'moved-to',
            'never-seen',
          ]);
          expect(await repos.offlineQueue.countByAgent(['never-seen', 'known', 'nobody'])).toEqual({
            'never-seen': 1,
            known: 1,
          });
          expect(await repos.offlineQueue.countByAgent([])).toEqual({});
          expect(await repos.offlineQueue.countByAgent()).toEqual({
            'never-seen': 1,
            known: 1,
            'moved-to': 1,
          });
        });

        it('a release marks the agent offline; one by an instance that lost it changes nothing', async () => {
          await repos.agents.upsert({ id: 'a1', status: 'online' });
          await repos.agents.claim('a1', 'cloud-a', T0 + 1);
          await repos.agents.release('a1', 'cloud-b');
          expect(await repos.agents.counts()).toEqual({ online: 1, offline: 0, total: 1 });
          await repos.agents.release('a1', 'cloud-a');
          expect(await repos.agents.findById('a1')).toMatchObject({ status: 'offline', instanceId: null });
          expect(await repos.agents.counts()).toEqual({ online: 0, offline: 1, total: 1 });
        });
      });

      it('keeps a cancel owed by the agent until removed, renewed by a second request, gone with its task', async () => {
        const t = await repos.tasks.create(newTask());
        expect(await repos.cancelRequests.find(t.id)).toBeUndefined();
        await repos.cancelRequests.put(t.id, 'not needed', 'U1');
        expect(await repos.cancelRequests.find(t.id)).toEqual({
          taskId: t.id,
          reason: 'not needed',
          actor: 'U1',
          requestedAt: expect.any(Number),
        });
        await repos.cancelRequests.put(t.id, 'really', 'U2');
        expect(await repos.cancelRequests.find(t.id)).toMatchObject({ reason: 'really', actor: 'U2' });
        expect(await repos.cancelRequests.remove(t.id)).toBe(true);
        expect(await repos.cancelRequests.remove(t.id)).toBe(false);
        await repos.cancelRequests.put(t.id, 'again', 'U1');
        await repos.tasks.delete(t.id);
        expect(await repos.cancelRequests.find(t.id)).toBeUndefined();
      });

      it('keeps console credentials by hash until expiry; consumes a login token exactly once', async () => {
        const c = repos.consoleCredentials;
        await c.put('login', 'aa', T0 + 10);
        await c.put('session', 'bb', T0 + 10);
        expect(await c.isValid('session', 'bb', T0 + 9)).toBe(true);
        expect(await c.isValid('session', 'bb', T0 + 10)).toBe(false);
        expect(await c.isValid('login', 'bb', T0)).toBe(false);
        const both = await Promise.all([c.consume('login', 'aa', T0), c.consume('login', 'aa', T0)]);
        expect(both.filter(Boolean)).toHaveLength(1);
        await c.put('login', 'cc', T0 + 5);
        expect(await c.consume('login', 'cc', T0 + 5)).toBe(false);
        expect(await c.consume('login', 'cc', T0)).toBe(false);
        expect(await c.remove('session', 'bb')).toBe(true);
        expect(await c.remove('session', 'bb')).toBe(false);
        await c.put('session', 'dd', T0 + 5);
        await c.put('session', 'ee', T0 + 50);
        expect(await c.pruneExpired(T0 + 5)).toBe(1);
        expect(await c.isValid('session', 'ee', T0 + 5)).toBe(true);
      });

      it("carries the holder's view of the agent's health with the claim, kept by a claim without one, gone with the release", async () => {
        await repos.agents.upsert({ id: 'h1', status: 'online' });
        const busy = { health: 'overloaded' as const, activeTasks: 2, maxConcurrentTasks: 3 };
        await repos.agents.claim('h1', 'cloud-a', T0 + 1, busy);
        expect(await repos.agents.findById('h1')).toMatchObject({ instanceId: 'cloud-a', health: busy });
        await repos.agents.claim('h1', 'cloud-a', T0 + 2);
        expect(await repos.agents.findById('h1')).toMatchObject({ lastSeenAt: T0 + 2, health: busy });
        await repos.agents.claim('h1', 'cloud-a', T0 + 3, { ...busy, health: 'healthy', activeTasks: null });
        expect((await repos.agents.findById('h1'))?.health).toEqual({
          health: 'healthy',
          activeTasks: null,
          maxConcurrentTasks: 3,
        });
        await repos.agents.release('h1', 'cloud-a');
        expect(await repos.agents.findById('h1')).toMatchObject({ instanceId: null, health: null });
        await repos.agents.claim('h1', 'cloud-b', T0 + 4, busy);
        await repos.agents.releaseAllBut([]);
        expect(await repos.agents.findById('h1')).toMatchObject({ instanceId: null, health: null });
      });
    });

    describe('task steps', () => {
      it('keeps a transcript in order, grows text steps, merges a result into its call', async () => {
        await repos.taskSteps.append({
          taskId: 't1',
          kind: 'started',
          tool: null,
          message: 'Task started',
          detail: null,
        });
        tick();
        await repos.taskSteps.appendText('t1', 'Looking ');
        await repos.taskSteps.appendText('t1', 'at it.');
        await repos.taskSteps.append({
          taskId: 't1',
          kind: 'tool',
          tool: 'Edit',
          message: 'Editing a.ts',
          detail: { toolUseId: 'toolu_1', input: '--- a/a.ts' },
        });
        await repos.taskSteps.appendText('t1', 'Done.');
        await repos.taskSteps.append({
          taskId: 't2',
          kind: 'started',
          tool: null,
          message: 'other',
          detail: null,
        });
        expect(await repos.taskSteps.mergeDetail('t1', 'toolu_1', { result: 'ok', isError: false })).toBe(
          true,
        );
        expect(await repos.taskSteps.mergeDetail('t1', 'toolu_9', { result: 'x' })).toBe(false);
        expect(await repos.taskSteps.mergeDetail('t2', 'toolu_1', { result: 'x' })).toBe(false);
        const steps = await repos.taskSteps.list('t1');
        expect(steps.map((s) => [s.kind, s.tool, s.message])).toEqual([
          ['started', null, 'Task started'],
          ['text', null, 'Looking at it.'],
          ['tool', 'Edit', 'Editing a.ts'],
          ['text', null, 'Done.'],
        ]);
        expect(steps[0]?.createdAt).toBe(T0);
        expect(steps[2]?.detail).toEqual({
          toolUseId: 'toolu_1',
          input: '--- a/a.ts',
          result: 'ok',
          isError: false,
        });
        expect(await repos.taskSteps.list('t2')).toHaveLength(1);
      });

      it('go with their task when it is deleted', async () => {
        const t = await repos.tasks.create(newTask());
        await repos.taskSteps.append({
          taskId: t.id,
          kind: 'started',
          tool: null,
          message: 's',
          detail: null,
        });
        await repos.tasks.delete(t.id);
        expect(await repos.taskSteps.list(t.id)).toEqual([]);
      });
    });

    describe('task search', () => {
      it('filters by status, project, user, bot, dates and text, newest first, in keyset pages', async () => {
        const made = [];
        for (let i = 0; i < 7; i++) {
          tick(1000);
          made.push(
            await repos.tasks.create(
              newTask({
                id: `task_${i}`,
                prompt: i === 3 ? 'Fix the 100% CPU_spin in worker.ts' : `task number ${i}`,
                projectId: i % 2 === 0 ? 'proj_a' : 'proj_b',
                userId: i < 4 ? 'U1' : 'U2',
                botName: i === 5 ? 'reviewer' : 'coder',
                status: i === 6 ? 'running' : 'pending',
              }),
            ),
          );
        }
        const ids = (ts: Array<{ id: string }>) => ts.map((t) => t.id);
        expect(ids(await repos.taskSearch.search({ limit: 3 }))).toEqual(['task_6', 'task_5', 'task_4']);
        const first = await repos.taskSearch.search({ limit: 3 });
        const last = first[2]!;
        expect(
          ids(
            await repos.taskSearch.search({ limit: 3, before: { createdAt: last.createdAt, id: last.id } }),
          ),
        ).toEqual(['task_3', 'task_2', 'task_1']);
        expect(ids(await repos.taskSearch.search({ limit: 10, status: ['running'] }))).toEqual(['task_6']);
        expect(ids(await repos.taskSearch.search({ limit: 10, projectId: 'proj_b' }))).toEqual([
          'task_5',
          'task_3',
          'task_1',
        ]);
        expect(ids(await repos.taskSearch.search({ limit: 10, userId: 'U2', botName: 'coder' }))).toEqual([
          'task_6',
          'task_4',
        ]);
        expect(
          ids(await repos.taskSearch.search({ limit: 10, from: made[1]!.createdAt, to: made[3]!.createdAt })),
        ).toEqual(['task_2', 'task_1']);
        expect(ids(await repos.taskSearch.search({ limit: 10, text: 'cpu_SPIN' }))).toEqual(['task_3']);
        expect(ids(await repos.taskSearch.search({ limit: 10, text: '100%' }))).toEqual(['task_3']);
        expect(ids(await repos.taskSearch.search({ limit: 10, text: '_' }))).toEqual(['task_3']);
        expect(ids(await repos.taskSearch.search({ limit: 10, text: 'task_5' }))).toEqual(['task_5']);
        // Same created_at: the id breaks the tie, so a page boundary never skips or repeats a task.
        const twinA = await repos.tasks.create(newTask({ id: 'task_twin_a' }));
        const twinB = await repos.tasks.create(newTask({ id: 'task_twin_b' }));
        expect(twinA.createdAt).toBe(twinB.createdAt);
        const top = await repos.taskSearch.search({ limit: 1 });
        expect(ids(top)).toEqual(['task_twin_b']);
        expect(
          ids(
            await repos.taskSearch.search({ limit: 1, before: { createdAt: twinB.createdAt, id: twinB.id } }),
          ),
        ).toEqual(['task_twin_a']);
      });

      it('answers a rare word whole from the text index; a common or short one a bounded window at a time', async () => {
        for (let i = 0; i < 30; i++) {
          if (i % 2 === 0) tick(1000);
          const prompt = i % 7 === 0 ? 'a rare needle' : i % 3 === 0 ? 'some sparse straw' : `hay ${i}`;
          await repos.tasks.create(newTask({ id: `task_${String(i).padStart(2, '0')}`, prompt }));
        }
        /** Every page of a search, as the dashboard walks them (a short page with a cursor goes on). */
        const walk = async (text: string, status?: TaskStatus[]) => {
          const found: string[] = [];
          let before: { createdAt: number; id: string } | undefined;
          let calls = 0;
          while (calls < 40) {
            calls++;
            const page = await repos.taskSearch.searchPage({
              limit: 2,
              text,
              scanLimit: 6,
              ...(status ? { status } : {}),
              ...(before ? { before } : {}),
            });
            found.push(...page.rows.map((r) => r.id));
            const last = page.rows.length >= 2 ? page.rows[page.rows.length - 1] : undefined;
            const next = last ? { createdAt: last.createdAt, id: last.id } : page.scannedTo;
            if (!next) break;
            before = next;
          }
          return { found, calls };
        };
        const needles = ['task_28', 'task_21', 'task_14', 'task_07', 'task_00'];
        // Five matches, no more than the six rows a call may test: the index answers, two per page.
        expect(await walk('NEEDLE')).toEqual({ found: needles, calls: 3 });
        expect(await walk('NEEDLE', ['pending', 'failed'])).toEqual({ found: needles, calls: 3 });
        // More matches than that: six rows tested per call, so the thirty take at least five calls.
        const straws = [
          'task_27',
          'task_24',
          'task_18',
          'task_15',
          'task_12',
          'task_09',
          'task_06',
          'task_03',
        ];
        const straw = await walk('Straw');
        expect(straw.found).toEqual(straws);
        expect(straw.calls).toBeGreaterThanOrEqual(5);
        // Too short for the text index: the same bounded windows.
        const short = await walk('ne');
        expect(short.found).toEqual(needles);
        expect(short.calls).toBeGreaterThanOrEqual(5);
        // Without a window bound set, the default window covers this small history in one call.
        const all = await repos.taskSearch.searchPage({ limit: 10, text: 'needle' });
        expect(all.rows.map((r) => r.id)).toEqual(needles);
        expect(all.scannedTo).toBeNull();
      });

      it('finds the tasks whose request or result holds the text, ignoring case, as a test of every row does', async () => {
        const corpus: Array<[prompt: string, result: string | null]> = [
          ['Fix the LOGIN bug in auth.ts', 'Done: login retries twice.'],
          ['fix the login page layout', null],
          ['Refactor the billing service', 'billing now streams invoices'],
          ['Write tests for the 100% coverage goal', 'coverage is at 87 percent'],
          ['rename a_b to a-b in config.yaml', 'renamed a_b'],
          ['say "hi" to the new hire', 'said hi'],
          ['Une ÉCOLE est un lieu', 'merci'],
          ['une école de plus', null],
          ['alpha', 'beta'],
          ['upgrade node to 20 in CI', 'CI is green on Node 20'],
          ['investigate the flaky checkout test', 'the checkout test waits for the server now'],
        ];
        for (let i = 0; i < 40; i++) {
          if (i % 3 === 0) tick(1000);
          const [prompt, result] = corpus[(i * 7) % corpus.length] ?? ['', null];
          const t = await repos.tasks.create(newTask({ id: `task_${String(i).padStart(2, '0')}`, prompt }));
          if (result !== null) await repos.tasks.update(t.id, { result: `${result} (run ${i})` });
        }
        const rows = await database.db
          .selectFrom('tasks')
          .select(['id', 'prompt', 'result', 'created_at'])
          .execute();
        // The text as the engine folds it: PostgreSQL's lower() knows every letter, SQLite's only A to Z.
        const fold = (v: string) =>
          database.dialect === 'postgres' ? v.toLowerCase() : v.replace(/[A-Z]/g, (c) => c.toLowerCase());
        const expected = (text: string) =>
          rows
            .filter((r) => [r.prompt, r.result ?? ''].some((v) => fold(v).includes(text.toLowerCase())))
            .sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1))
            .map((r) => r.id);
        const terms = [
          'login',
          'LOGIN',
          'ogi',
          'the checkout test',
          'billing',
          'INVOICES',
          '100%',
          'a_b',
          '"hi"',
          'école',
          'run 3',
          '(run 12)',
          'CI',
          'ab',
          'alphabeta',
          'no such words',
        ];
        for (const text of terms) {
          for (const scanLimit of [3, 1000]) {
            const found: string[] = [];
            let before: { createdAt: number; id: string } | undefined;
            for (let calls = 0; calls < 100; calls++) {
              const page = await repos.taskSearch.searchPage({
                limit: 4,
                text,
                scanLimit,
                ...(before ? { before } : {}),
              });
              found.push(...page.rows.map((r) => r.id));
              const last = page.rows.length >= 4 ? page.rows[page.rows.length - 1] : undefined;
              const next = last ? { createdAt: last.createdAt, id: last.id } : page.scannedTo;
              if (!next) break;
              before = next;
            }
            expect({ text, scanLimit, found }).toEqual({ text, scanLimit, found: expected(text) });
          }
        }
        expect(expected('login').length).toBeGreaterThan(4);
        const written = (word: string) => rows.filter((r) => r.prompt.includes(word)).length;
        expect(written('école')).toBeGreaterThan(0);
        expect(expected('ÉCOLE')).toHaveLength(
          written('école') + (database.dialect === 'postgres' ? written('ÉCOLE') : 0),
        );
        expect(expected('alphabeta')).toEqual([]);
      });

      it('keeps the text index in step with creates, updates, deletes, archives, restores and other writers', async () => {
        const retention = new RetentionService({ repos, clock: { ...systemClock, now: () => now } });
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) {
          tick(1000);
          ids.push(
            (await repos.tasks.create(newTask({ prompt: `routine chore ${i}`, status: 'running' }))).id,
          );
        }
        /** One call, with the newest rows (the first window) holding no match: only the index can answer. */
        const found = async (text: string) => {
          const page = await repos.taskSearch.searchPage({ limit: 5, text });
          expect(page.scannedTo).toBeNull();
          return page.rows.map((r) => r.id).sort();
        };
        const [a, b, c, d] = ids as [string, string, string, string];
        await repos.tasks.transition(a, 'completed', { result: 'found the Zebra in the logs', costUsd: 0.5 });
        await repos.tasks.update(b, { result: 'a zebra crossing' });
        expect(await found('zebra')).toEqual([a, b].sort());
        await repos.tasks.update(b, { result: 'a giraffe' });
        expect(await found('zebra')).toEqual([a]);
        expect(await found('giraffe')).toEqual([b]);
        await repos.tasks.delete(b);
        expect(await found('giraffe')).toEqual([]);

        const { archiveId } = await retention.archive(a, 'test', 'U1');
        expect(await found('zebra')).toEqual([]);
        tick(1000);
        const restored = await retention.restore(archiveId, 'U1');
        expect(await found('zebra')).toEqual([restored]);

        // Another writer, in statements of many rows.
        await sql`update tasks set prompt = ${'an Okapi sighting'} where id in (${c}, ${d})`.execute(
          database.db,
        );
        expect(await found('okapi')).toEqual([c, d].sort());
        await copyTask(database, c, 'task_copy', sql`prompt || ${' and a quokka'}`);
        expect(await found('quokka')).toEqual(['task_copy']);
        expect(await found('okapi')).toEqual([c, d, 'task_copy'].sort());
        await sql`delete from tasks where lower(prompt) like ${'%okapi%'}`.execute(database.db);
        expect(await found('okapi')).toEqual([]);

        if (database.dialect === 'sqlite') {
          // The index holds exactly the rows that are there: nothing stale behind the final test of each row.
          const count = async (q: string) =>
            Number(
              (
                await sql<{
                  n: number;
                }>`select count(*) as n from task_search where task_search match ${q}`.execute(database.db)
              ).rows[0]?.n,
            );
          expect(await count('"zebra"')).toBe(1);
          expect(await count('"giraffe"')).toBe(0);
          expect(await count('"okapi"')).toBe(0);
          expect(await count('"chore"')).toBe(
            Number(
              (await database.db.selectFrom('tasks').select(sql<number>`count(*)`.as('n')).executeTakeFirst())
                ?.n,
            ),
          );
        }
      });

      it('returns every task once across keyset pages while tasks are added, for every kind of filter', async () => {
        const statuses: TaskStatus[] = ['completed', 'failed', 'running'];
        for (let i = 0; i < 30; i++) {
          // Pairs share a created_at, so page boundaries fall between twins too.
          if (i % 2 === 0) tick(1000);
          await repos.tasks.create(
            newTask({
              id: `task_${String(i).padStart(2, '0')}`,
              status: statuses[i % 3],
              botName: i % 4 === 0 ? 'reviewer' : 'coder',
              prompt: i % 5 === 0 ? 'a keyed needle' : 'plain hay',
            }),
          );
        }
        const filters: Array<Partial<TaskSearch>> = [
          {},
          { status: ['completed', 'failed'] },
          { botName: 'reviewer' },
          // Answered from the text index, and tested window by window.
          { text: 'needle' },
          { text: 'hay', scanLimit: 6 },
          { text: 'needle', status: ['completed', 'running'] },
        ];
        for (const [n, filter] of filters.entries()) {
          const all = (await repos.taskSearch.search({ limit: 100 })).map((t) => t.id);
          const expected = (await repos.taskSearch.search({ ...filter, limit: 100, scanLimit: 1000 })).map(
            (t) => t.id,
          );
          expect(expected.length).toBeGreaterThan(3);
          expect(expected.length).toBeLessThanOrEqual(all.length);
          const seen: string[] = [];
          let cursor: { createdAt: number; id: string } | undefined;
          for (let page = 0; page < 40; page++) {
            const { rows, scannedTo } = await repos.taskSearch.searchPage({
              ...filter,
              limit: 4,
              ...(cursor ? { before: cursor } : {}),
            });
            seen.push(...rows.map((t) => t.id));
            const last = rows.length >= 4 ? rows[rows.length - 1] : undefined;
            const next = last ? { createdAt: last.createdAt, id: last.id } : scannedTo;
            if (!next) break;
            cursor = next;
            // Newer tasks that match every filter arrive between pages, some in the very millisecond of the
            // cursor's page.
            await repos.tasks.create(
              newTask({
                id: `task_new_${n}_${page}`,
                status: 'completed',
                botName: 'reviewer',
                prompt: 'a keyed needle in hay',
              }),
            );
            tick(1);
          }
          expect({ filter, seen }).toEqual({ filter, seen: expected });
        }
      });

      it('keeps totals per status and bot equal to a recount through creates, transitions, updates and deletes', async () => {
        let seed = 7;
        const random = () => {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          return seed / 2 ** 31;
        };
        const ids: string[] = [];
        for (let i = 0; i < 60; i++) {
          tick();
          const t = await repos.tasks.create(
            newTask({
              botName: random() < 0.5 ? 'coder' : 'reviewer',
              status: random() < 0.5 ? 'pending' : 'running',
            }),
          );
          ids.push(t.id);
          const pick = ids[Math.floor(random() * ids.length)] ?? t.id;
          const current = await repos.tasks.findById(pick);
          if (!current) continue;
          const r = random();
          const metrics = {
            costUsd: Math.round(random() * 1e4) / 1e5,
            inputTokens: Math.floor(random() * 5000),
            outputTokens: Math.floor(random() * 500),
            cacheReadTokens: Math.floor(random() * 900),
            cacheCreationTokens: Math.floor(random() * 90),
            durationMs: Math.floor(random() * 60_000),
          };
          if (r < 0.4 && judgeTransition(current.status, 'running').kind === 'apply') {
            await repos.tasks.transition(pick, 'running');
          } else if (r < 0.7 && judgeTransition(current.status, 'completed').kind === 'apply') {
            await repos.tasks.transition(pick, 'completed', metrics);
          } else if (r < 0.8 && judgeTransition(current.status, 'failed').kind === 'apply') {
            await repos.tasks.transition(pick, 'failed', { ...metrics, errorCode: 'X' });
          } else if (r < 0.9) {
            await repos.tasks.update(pick, metrics);
          } else {
            await repos.tasks.delete(pick);
            ids.splice(ids.indexOf(pick), 1);
          }
        }
        const recount = await database.db
          .selectFrom('tasks')
          .select([
            'status',
            'bot_name',
            sql<number>`count(*)`.as('n'),
            sql<number>`sum(cost_usd)`.as('cost'),
            sql<number>`sum(input_tokens)`.as('input'),
            sql<number>`sum(output_tokens)`.as('output'),
            sql<number>`sum(cache_read_tokens)`.as('cache_read'),
            sql<number>`sum(cache_creation_tokens)`.as('cache_creation'),
            sql<number>`sum(duration_ms)`.as('duration'),
          ])
          .groupBy(['status', 'bot_name'])
          .execute();
        const key = (status: string, bot: string) => `${status}/${bot}`;
        const expected = Object.fromEntries(
          recount.map((r) => [
            key(r.status, r.bot_name),
            [
              Number(r.n),
              Math.round(Number(r.cost) * 1e6),
              Number(r.input),
              Number(r.output),
              Number(r.cache_read),
              Number(r.cache_creation),
              Number(r.duration),
            ],
          ]),
        );
        const totals = await repos.taskSearch.totals();
        const actual = Object.fromEntries(
          totals.map((t) => [
            key(t.status, t.botName),
            [
              t.tasks,
              Math.round(t.costUsd * 1e6),
              t.inputTokens,
              t.outputTokens,
              t.cacheReadTokens,
              t.cacheCreationTokens,
              t.durationMs,
            ],
          ]),
        );
        expect(Object.keys(expected).length).toBeGreaterThan(2);
        expect(actual).toEqual(expected);
      });

      it('adds up cost per day, project and user', async () => {
        const day = 86_400_000;
        const a = await repos.tasks.create(newTask({ projectId: 'proj_a', userId: 'U1', status: 'running' }));
        await repos.tasks.transition(a.id, 'completed', { costUsd: 0.25 });
        tick(day);
        const b = await repos.tasks.create(newTask({ projectId: 'proj_b', userId: 'U1', status: 'running' }));
        await repos.tasks.transition(b.id, 'completed', { costUsd: 0.5 });
        const c = await repos.tasks.create(newTask({ projectId: 'proj_b', userId: 'U2' }));
        expect(c.costUsd).toBe(0);
        expect(await repos.taskSearch.costs('project', T0)).toEqual([
          { key: 'proj_b', costUsd: 0.5, tasks: 2 },
          { key: 'proj_a', costUsd: 0.25, tasks: 1 },
        ]);
        expect(await repos.taskSearch.costs('user', T0 + 1)).toEqual([
          { key: 'U1', costUsd: 0.5, tasks: 1 },
          { key: 'U2', costUsd: 0, tasks: 1 },
        ]);
        const days = await repos.taskSearch.costs('day', T0);
        const key = (ms: number) => new Date(ms).toISOString().slice(0, 10);
        expect(days.find((d) => d.key === key(T0))).toEqual({ key: key(T0), costUsd: 0.25, tasks: 1 });
        expect(days.find((d) => d.key === key(T0 + day))).toEqual({
          key: key(T0 + day),
          costUsd: 0.5,
          tasks: 2,
        });
      });

      it('keeps cost buckets and the archive count equal to a recount through every kind of writer', async () => {
        let seed = 11;
        const random = () => {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          return seed / 2 ** 31;
        };
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
        // Costs in 1/1024 dollars add up exactly in any order, so the recount compares without rounding.
        const cost = () => Math.floor(random() * 4096) / 1024;
        const retention = new RetentionService({ repos, clock: { ...systemClock, now: () => now } });
        const ids: string[] = [];
        const archives: string[] = [];
        const done = new Set<string>();
        for (let i = 0; i < 160; i++) {
          tick(Math.floor(random() * 6 * 3_600_000));
          const r = random();
          const live = ids.length > 0 ? pick(ids) : undefined;
          const task = live ? await repos.tasks.findById(live) : undefined;
          if (r < 0.3 || !task) {
            const t = await repos.tasks.create(
              newTask({
                projectId: pick(['proj_a', 'proj_b', 'proj_c']),
                userId: pick(['U1', 'U2', 'U3', 'U4']),
              }),
            );
            ids.push(t.id);
            done.add('create');
          } else if (r < 0.5 && !isTerminalStatus(task.status)) {
            // The lifecycle's path: sent, running (its cost so far), completed with its cost.
            if (task.status === 'pending') await repos.tasks.transition(task.id, 'submitted');
            await repos.tasks.transition(task.id, 'running', { costUsd: cost() });
            await repos.tasks.transition(task.id, 'completed', { costUsd: cost() });
            done.add('complete');
          } else if (r < 0.57) {
            await repos.tasks.update(task.id, { costUsd: cost() });
            done.add('update');
          } else if (r < 0.62) {
            await repos.tasks.delete(task.id);
            ids.splice(ids.indexOf(task.id), 1);
            done.add('delete');
          } else if (r < 0.75) {
            if (!isTerminalStatus(task.status)) await repos.tasks.transition(task.id, 'cancelled');
            archives.push((await retention.archive(task.id, 'test', 'U1')).archiveId);
            ids.splice(ids.indexOf(task.id), 1);
            done.add('archive');
          } else if (r < 0.8 && archives.length > 0) {
            const archiveId = pick(archives);
            archives.splice(archives.indexOf(archiveId), 1);
            ids.push(await retention.restore(archiveId, 'U1'));
            done.add('restore');
          } else if (r < 0.86) {
            const copy = `task_copy_${i}`;
            await copyTask(database, task.id, copy, sql`prompt`);
            ids.push(copy);
            done.add('insert select');
          } else if (r < 0.93) {
            await sql`update tasks set cost_usd = cost_usd + ${0.25}, user_id = ${pick(['U1', 'U5'])}
              where project_id = ${task.projectId}`.execute(database.db);
            done.add('update many');
          } else {
            // Created times moved back two days: their buckets move with them.
            await sql`update tasks set created_at = created_at - ${2 * DAY} where user_id = ${task.userId}`.execute(
              database.db,
            );
            done.add('move');
          }
        }
        expect([...done].sort()).toEqual(
          [
            'archive',
            'complete',
            'create',
            'delete',
            'insert select',
            'move',
            'restore',
            'update',
            'update many',
          ].sort(),
        );
        expect(archives.length).toBeGreaterThan(0);
        const rows = await database.db
          .selectFrom('tasks')
          .select(['project_id', 'user_id', 'created_at', 'cost_usd'])
          .execute();
        expect(rows.length).toBeGreaterThan(20);

        const widths = { time: 900_000, project: DAY, user: DAY };
        const recount = new Map<string, { tasks: number; cost: number }>();
        for (const r of rows) {
          for (const [dim, key] of [
            ['time', ''],
            ['project', r.project_id],
            ['user', r.user_id],
          ] as const) {
            const at = `${dim}/${key}/${Math.floor(r.created_at / widths[dim]) * widths[dim]}`;
            const b = recount.get(at) ?? { tasks: 0, cost: 0 };
            b.tasks += 1;
            b.cost += r.cost_usd;
            recount.set(at, b);
          }
        }
        const kept = await database.db
          .selectFrom('task_costs')
          .select([
            'dim',
            'key',
            'bucket',
            sql<number>`sum(tasks)`.as('tasks'),
            sql<number>`sum(cost_usd)`.as('cost'),
          ])
          .groupBy(['dim', 'key', 'bucket'])
          .execute();
        const stored = new Map(
          kept
            .filter((k) => Number(k.tasks) !== 0 || Number(k.cost) !== 0)
            .map((k) => [`${k.dim}/${k.key}/${k.bucket}`, { tasks: Number(k.tasks), cost: Number(k.cost) }]),
        );
        expect(stored).toEqual(recount);

        // What the chart is given, for viewers in several time zones, from midnight or from any instant.
        const end = now;
        const usd = (b: { key: string; costUsd: number; tasks: number }) => ({
          ...b,
          costUsd: Math.round(b.costUsd * 1e6) / 1e6,
        });
        for (const tz of [0, -60, 330, -345, 600]) {
          const offset = tz * 60_000;
          const midnight = Math.floor((end - offset) / DAY) * DAY + offset;
          for (const since of [midnight - 13 * DAY, midnight - 5 * DAY, end - 9 * DAY - 123_457]) {
            const inRange = rows.filter((r) => r.created_at >= since);
            const byDay = new Map<string, { key: string; costUsd: number; tasks: number }>();
            for (const r of inRange) {
              const key = new Date(r.created_at - offset).toISOString().slice(0, 10);
              const b = byDay.get(key) ?? { key, costUsd: 0, tasks: 0 };
              b.costUsd += r.cost_usd;
              b.tasks += 1;
              byDay.set(key, b);
            }
            const days = (await repos.taskSearch.costs('day', since, tz)).filter((d) => d.tasks !== 0);
            expect({ tz, since, days }).toEqual({
              tz,
              since,
              days: [...byDay.values()].sort((a, b) => a.key.localeCompare(b.key)).map(usd),
            });
            for (const by of ['project', 'user'] as const) {
              const sums = new Map<string, { key: string; costUsd: number; tasks: number }>();
              for (const r of inRange) {
                const key = by === 'project' ? r.project_id : r.user_id;
                const b = sums.get(key) ?? { key, costUsd: 0, tasks: 0 };
                b.costUsd += r.cost_usd;
                b.tasks += 1;
                sums.set(key, b);
              }
              const want = [...sums.values()]
                .sort((a, b) => b.costUsd - a.costUsd || (a.key < b.key ? -1 : 1))
                .map(usd);
              expect({ by, since, got: await repos.taskSearch.costs(by, since, tz) }).toEqual({
                by,
                since,
                got: want,
              });
            }
          }
        }
        await expect(repos.taskSearch.costs('day', T0, 7)).rejects.toThrow(/multiple of 15/);

        const archived = await database.db
          .selectFrom('archived_tasks')
          .select(sql<number>`count(*)`.as('n'))
          .executeTakeFirstOrThrow();
        expect(Number(archived.n)).toBeGreaterThan(0);
        expect(await repos.archivedTasks.count()).toBe(Number(archived.n));
      });
    });

    describe('console messages', () => {
      const msg = (ts: string, threadTs: string | null, text: string, channelId = 'console:local') => ({
        channelId,
        ts,
        threadTs,
        userId: 'console-user',
        text,
        blocks: null,
        reactions: [],
        visibleTo: null,
        postedAt: Math.round(Number(ts) * 1000),
        editedAt: null,
      });

      it('keeps threads with their replies, newest threads first in the window, and edits', async () => {
        await repos.consoleMessages.insert(msg('1700000001.000000', null, 'first'));
        await repos.consoleMessages.insert(msg('1700000002.000000', '1700000001.000000', 'reply 1'));
        await repos.consoleMessages.insert(msg('1700000003.000000', null, 'second'));
        await repos.consoleMessages.insert(msg('1700000004.000000', '1700000001.000000', 'reply 2'));
        await repos.consoleMessages.insert(msg('1700000005.000000', null, 'elsewhere', 'console:other'));
        await repos.consoleMessages.insert(msg('1700000001.000000', null, 'duplicate ignored'));
        expect(
          await repos.consoleMessages.update('1700000002.000000', {
            text: 'reply 1 (edited)',
            blocks: [{ type: 'divider' }],
            reactions: ['eyes'],
            editedAt: T0,
          }),
        ).toBe(true);
        expect(await repos.consoleMessages.update('1.000000', { text: 'x' })).toBe(false);
        const threads = await repos.consoleMessages.recentThreads('console:local', 10, 10);
        expect(threads.map((t) => [t.root.text, ...t.replies.map((r) => r.text)])).toEqual([
          ['first', 'reply 1 (edited)', 'reply 2'],
          ['second'],
        ]);
        expect(threads[0]?.replies[0]).toMatchObject({
          blocks: [{ type: 'divider' }],
          reactions: ['eyes'],
          editedAt: T0,
        });
        const newest = await repos.consoleMessages.recentThreads('console:local', 1, 1);
        expect(newest.map((t) => t.root.text)).toEqual(['second']);
        const clipped = await repos.consoleMessages.recentThreads('console:local', 2, 1);
        expect(clipped[0]?.replies.map((r) => r.text)).toEqual(['reply 2']);
        expect(await repos.consoleMessages.find('1700000005.000000')).toMatchObject({
          channelId: 'console:other',
        });
        expect(await repos.consoleMessages.find('9.000000')).toBeUndefined();
      });
    });

    describe('permission requests', () => {
      const request = (id: string, over: Partial<{ taskId: string; agentId: string }> = {}) => ({
        id,
        taskId: over.taskId ?? 'task_1',
        agentId: over.agentId ?? 'agent_1',
        attempt: 2,
        tool: 'Bash',
        summary: 'npm install left-pad',
        reason: 'approval_rule' as const,
        expiresAt: T0 + 600_000,
      });

      it('stores a request once, and decides it exactly once', async () => {
        const created = await repos.permissionRequests.create(request('perm_1'));
        expect(created).toEqual({
          ...request('perm_1'),
          status: 'pending',
          decidedBy: null,
          channelId: null,
          messageTs: null,
          createdAt: T0,
          decidedAt: null,
        });
        expect(await repos.permissionRequests.create({ ...request('perm_1'), summary: 'other' })).toEqual(
          created,
        );
        await repos.permissionRequests.setMessage('perm_1', 'C1', '123.456');
        tick(50);
        const decided = await repos.permissionRequests.decide('perm_1', 'approved', 'U1');
        expect(decided).toMatchObject({
          status: 'approved',
          decidedBy: 'U1',
          decidedAt: T0 + 50,
          channelId: 'C1',
          messageTs: '123.456',
        });
        expect(await repos.permissionRequests.decide('perm_1', 'denied', 'U2')).toBeUndefined();
        expect(await repos.permissionRequests.findById('perm_1')).toEqual(decided);
        expect(await repos.permissionRequests.findById('perm_9')).toBeUndefined();
      });

      it('lists what is still pending, by task or agent', async () => {
        await repos.permissionRequests.create(request('perm_a'));
        tick();
        await repos.permissionRequests.create(request('perm_b', { taskId: 'task_2' }));
        tick();
        await repos.permissionRequests.create(request('perm_c', { agentId: 'agent_2' }));
        await repos.permissionRequests.decide('perm_a', 'timed_out', null);
        const ids = (rs: Array<{ id: string }>) => rs.map((r) => r.id);
        expect(ids(await repos.permissionRequests.listPending())).toEqual(['perm_b', 'perm_c']);
        expect(ids(await repos.permissionRequests.listPending({ taskId: 'task_2' }))).toEqual(['perm_b']);
        expect(ids(await repos.permissionRequests.listPending({ taskIds: ['task_2', 'task_9'] }))).toEqual([
          'perm_b',
        ]);
        expect(await repos.permissionRequests.listPending({ taskIds: [] })).toEqual([]);
        expect(ids(await repos.permissionRequests.listPending({ agentId: 'agent_2' }))).toEqual(['perm_c']);
      });
    });

    describe('task plans', () => {
      it('keeps a plan by its planning task and moves its status only from the expected one', async () => {
        const created = await repos.taskPlans.create({ taskId: 'task_plan', originalCommand: 'implement' });
        expect(created).toMatchObject({
          taskId: 'task_plan',
          originalCommand: 'implement',
          steps: [],
          status: 'planning',
        });
        const steps = [
          { title: 'Schema', prompt: 'Add tables', command: 'implement' },
          { title: 'UI', prompt: 'Build it' },
        ];
        expect(await repos.taskPlans.move('task_plan', ['planning'], 'proposed', steps)).toMatchObject({
          status: 'proposed',
          steps,
        });
        expect(await repos.taskPlans.move('task_plan', ['proposed'], 'running')).toMatchObject({
          status: 'running',
          steps,
        });
        // A second Run plan finds it running already: no change.
        expect(await repos.taskPlans.move('task_plan', ['proposed'], 'running')).toBeUndefined();
        expect((await repos.taskPlans.findByTask('task_plan'))?.status).toBe('running');
        expect(await repos.taskPlans.findByTask('task_nope')).toBeUndefined();
      });

      it('lets one of many concurrent Plan first claims on a task win', async () => {
        const claims = await Promise.all(
          ['task_pf1', 'task_pf2', 'task_pf3'].map((taskId) =>
            repos.taskPlans.claimReplacement({ taskId, originalCommand: 'code', replacesTaskId: 'task_old' }),
          ),
        );
        const won = claims.filter((c) => c !== undefined);
        expect(won).toHaveLength(1);
        expect(won[0]).toMatchObject({ replacesTaskId: 'task_old', status: 'planning', steps: [] });
        expect((await repos.taskPlans.findByReplaced('task_old'))?.taskId).toBe(won[0]?.taskId);
        // Plans of --decompose replace nothing, however many there are.
        await repos.taskPlans.create({ taskId: 'task_d1', originalCommand: 'code' });
        expect(
          (await repos.taskPlans.create({ taskId: 'task_d2', originalCommand: 'code' })).replacesTaskId,
        ).toBeNull();
        expect(await repos.taskPlans.findByReplaced('task_nope')).toBeUndefined();
      });
    });

    describe('transactions', () => {
      it('commits every write made through the bound repositories', async () => {
        const id = await repos.transaction(async (r) => {
          const t = await r.tasks.create(newTask({ status: 'running' }));
          await r.tasks.transition(t.id, 'completed', { result: 'ok' });
          await r.audit.log({ action: 'task.completed', actor: 'system', resourceId: t.id });
          return t.id;
        });
        expect((await repos.tasks.findById(id))?.status).toBe('completed');
        expect(await repos.audit.list({ resourceId: id })).toHaveLength(1);
      });

      it('rolls back every write when the function throws, and rethrows', async () => {
        const t = await repos.tasks.create(newTask({ status: 'running' }));
        const boom = new Error('boom');
        await expect(
          repos.transaction(async (r) => {
            await r.tasks.transition(t.id, 'completed', { result: 'ok' });
            await r.audit.log({ action: 'task.completed', actor: 'system', resourceId: t.id });
            await r.projects.create({
              name: 'p',
              channelId: 'C1',
              agentId: 'a',
              localPath: '/p',
              defaultModel: null,
              maxBudgetUsd: null,
            });
            await r.offlineQueue.enqueue({
              agentId: 'agent_1',
              taskId: t.id,
              priority: 'normal',
              payload: t.submission,
              expiresAt: T0 + 1,
            });
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await repos.tasks.findById(t.id)).toEqual(t);
        expect(await repos.audit.list()).toEqual([]);
        expect(await repos.projects.list()).toEqual([]);
        expect(await repos.offlineQueue.findByTask(t.id)).toBeUndefined();
      });

      it('rolls back when a statement inside fails', async () => {
        await repos.users.upsert({ id: 'U1', role: 'viewer' });
        await expect(
          repos.transaction(async (r) => {
            await r.users.setRole('U1', 'admin');
            await r.users.setRole('U404', 'admin');
          }),
        ).rejects.toBeInstanceOf(RecordNotFoundError);
        expect((await repos.users.findById('U1'))?.role).toBe('viewer');
      });
    });
  });
}
