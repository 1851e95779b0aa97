import type { Clock } from '@bematic/protocol';
import { ManualClock } from '@bematic/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { completedTask, newTaskInput, openTestDb, type TestDb } from '../../test/support/database.js';
import { Cache } from '../cache/cache.js';
import { cacheKeys } from '../cache/cache-keys.js';
import { CacheInvalidation } from '../cache/invalidation.js';
import type { Repositories } from '../db/repositories/types.js';
import { MetricsCollector } from '../metrics/metrics-collector.js';
import { RetentionError, RetentionService } from './retention-service.js';

const DAY = 24 * 3600_000;

describe('RetentionService', () => {
  let t: TestDb;
  /** The schedule's timers: they fire only when the test moves them. */
  let timers: ManualClock;
  /** The database's time (`t.clock`) with those timers. */
  let clock: Clock;
  beforeEach(async () => {
    t = await openTestDb();
    timers = new ManualClock();
    clock = {
      now: () => t.clock.now,
      setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
      clearTimeout: (h) => timers.clearTimeout(h),
      setInterval: (fn, ms) => timers.setInterval(fn, ms),
      clearInterval: (h) => timers.clearInterval(h),
    };
  });
  afterEach(async () => {
    await t.close();
  });

  const service = (over: Partial<ConstructorParameters<typeof RetentionService>[0]> = {}) =>
    new RetentionService({ repos: t.repos, clock, ...over });

  it('archives a terminal task and restores it under a new id with its results', async () => {
    const task = await completedTask(t.repos);
    const session = await t.repos.sessions.create({ taskId: task.id, claudeSessionId: 'claude-1' });
    await t.repos.sessions.complete(session.id, {
      status: 'completed',
      inputTokens: 1200,
      outputTokens: 340,
      costUsd: 0.042,
      durationMs: 8100,
    });
    const cache = new Cache({ ttlMs: 60_000, now: () => t.clock.now });
    cache.set(cacheKeys.task(task.id), task);
    const metrics = new MetricsCollector({ defaultMetrics: false });
    const svc = service({ invalidation: new CacheInvalidation(cache), metrics });

    const { archiveId } = await svc.archive(task.id, 'done with it', 'U_admin');
    expect(await t.repos.tasks.findById(task.id)).toBeUndefined();
    const archive = await t.repos.archivedTasks.findById(archiveId);
    expect(archive?.originalId).toBe(task.id);
    expect(archive?.reason).toBe('done with it');
    expect(JSON.parse(archive?.taskData ?? '{}')).toMatchObject({ id: task.id, result: task.result });
    expect(cache.has(cacheKeys.task(task.id))).toBe(false);
    const [archived] = await t.repos.audit.list({ action: 'task.archived' });
    expect(archived).toMatchObject({ actor: 'U_admin', resourceId: task.id, details: { archiveId } });

    t.clock.now += 1000;
    const newId = await svc.restore(archiveId, 'U_admin');
    expect(newId).not.toBe(task.id);
    const restored = await t.repos.tasks.findById(newId);
    expect(restored).toMatchObject({
      status: 'completed',
      prompt: task.prompt,
      result: task.result,
      inputTokens: 1200,
      outputTokens: 340,
      cacheReadTokens: 50,
      costUsd: 0.042,
      filesChanged: ['src/auth.ts'],
      startedAt: task.startedAt,
      completedAt: task.completedAt,
      restoredFromArchive: archiveId,
      restoredAt: t.clock.now,
    });
    expect(restored?.submission.taskId).toBe(newId);
    expect(await t.repos.archivedTasks.findById(archiveId)).toBeUndefined();
    const sessions = await t.repos.sessions.findByTask(newId);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ claudeSessionId: 'claude-1', status: 'completed', costUsd: 0.042 });
    const [restoredEntry] = await t.repos.audit.list({ action: 'task.restored' });
    expect(restoredEntry).toMatchObject({ resourceId: newId, details: { archiveId, originalId: task.id } });
    expect(cache.get(cacheKeys.task(newId))).toMatchObject({ id: newId });

    const text = await metrics.text();
    expect(text).toMatch(/bematic_archivals_total\{trigger="manual"\} 1/);
    expect(text).toMatch(/bematic_restores_total 1/);
  });

  it('refuses to archive unfinished tasks, parents of unfinished subtasks and queued tasks', async () => {
    const svc = service();
    const running = await t.repos.tasks.create(newTaskInput());
    await t.repos.tasks.transition(running.id, 'submitted');
    await expect(svc.archive(running.id, 'x', 'U1')).rejects.toMatchObject({ code: 'NOT_TERMINAL' });

    const parent = await completedTask(t.repos);
    const child = await t.repos.tasks.create(newTaskInput({ parentTaskId: parent.id }));
    const verdict = await svc.validateForArchival(parent);
    expect(verdict).toMatchObject({ ok: false, code: 'HAS_ACTIVE_CHILDREN' });
    expect(verdict.ok ? '' : verdict.reason).toContain(child.id);
    await t.repos.tasks.transition(child.id, 'cancelled');
    expect(await svc.validateForArchival(parent)).toEqual({ ok: true });

    const queued = await completedTask(t.repos);
    await t.repos.offlineQueue.enqueue({
      agentId: 'agent_1',
      taskId: queued.id,
      priority: 'normal',
      payload: queued.submission,
      expiresAt: t.clock.now + DAY,
    });
    await expect(svc.archive(queued.id, 'x', 'U1')).rejects.toMatchObject({ code: 'IN_OFFLINE_QUEUE' });
    await expect(svc.archive('task_missing', 'x', 'U1')).rejects.toBeInstanceOf(RetentionError);

    expect(await t.repos.archivedTasks.list()).toHaveLength(0);
    expect(await t.repos.tasks.findById(running.id)).toBeDefined();
    expect(await t.repos.tasks.findById(queued.id)).toBeDefined();
  });

  it('rejects unknown and corrupt archives', async () => {
    const svc = service();
    await expect(svc.restore('archive_nope', 'U1')).rejects.toMatchObject({ code: 'ARCHIVE_NOT_FOUND' });
    const bad = await t.repos.archivedTasks.create({
      originalId: 'task_x',
      taskData: '{"id":"task_x"}',
      reason: 'r',
      metadata: {},
    });
    await expect(svc.restore(bad.id, 'U1')).rejects.toMatchObject({ code: 'ARCHIVE_CORRUPT' });
    const notJson = await t.repos.archivedTasks.create({
      originalId: 'y',
      taskData: '{',
      reason: 'r',
      metadata: {},
    });
    await expect(svc.restore(notJson.id, 'U1')).rejects.toMatchObject({ code: 'ARCHIVE_CORRUPT' });
    expect(await t.repos.archivedTasks.list()).toHaveLength(2);
  });

  it('archives in one transaction: a failure after the delete leaves the task in place', async () => {
    const task = await completedTask(t.repos);
    const failingAudit: Repositories = {
      ...t.repos,
      transaction: (fn) =>
        t.repos.transaction((tx) =>
          fn({
            ...tx,
            audit: {
              ...tx.audit,
              log: async () => {
                throw new Error('disk full');
              },
            },
          }),
        ),
    };
    const svc = new RetentionService({ repos: failingAudit, clock });
    await expect(svc.archive(task.id, 'x', 'U1')).rejects.toThrow('disk full');
    expect(await t.repos.tasks.findById(task.id)).toMatchObject({ id: task.id, status: 'completed' });
    expect(await t.repos.archivedTasks.list()).toHaveLength(0);
  });

  it('restores in one transaction: a failure keeps the archive and creates no task', async () => {
    const task = await completedTask(t.repos);
    const { archiveId } = await service().archive(task.id, 'x', 'U1');
    const failing: Repositories = {
      ...t.repos,
      transaction: (fn) =>
        t.repos.transaction((tx) =>
          fn({
            ...tx,
            audit: {
              ...tx.audit,
              log: async () => {
                throw new Error('disk full');
              },
            },
          }),
        ),
    };
    await expect(new RetentionService({ repos: failing }).restore(archiveId, 'U1')).rejects.toThrow(
      'disk full',
    );
    expect(await t.repos.archivedTasks.findById(archiveId)).toBeDefined();
    expect(await t.repos.tasks.list()).toHaveLength(0);
  });

  it('archives by age on a schedule, and never a freshly restored task', async () => {
    const old = await completedTask(t.repos);
    const oldRunning = await t.repos.tasks.create(newTaskInput());
    await t.repos.tasks.transition(oldRunning.id, 'submitted');
    t.clock.now += 20 * DAY;
    const recent = await completedTask(t.repos);
    const svc = service({ policy: { retentionDays: 30, intervalMs: 60_000 } });

    t.clock.now += 11 * DAY; // old is 31 days past completion, recent 11
    svc.start();
    expect(svc.busy).toBe(false);
    // advance() fires the due schedule before it first yields, so its run is in progress here: runOnce joins it.
    let moved = timers.advance(60_000);
    expect(svc.busy).toBe(true);
    expect(await svc.runOnce()).toBe(1);
    await moved;

    expect(await t.repos.tasks.findById(old.id)).toBeUndefined();
    expect(await t.repos.tasks.findById(recent.id)).toBeDefined();
    expect(await t.repos.tasks.findById(oldRunning.id)).toBeDefined();
    const archive = await t.repos.archivedTasks.findByOriginalId(old.id);
    expect(archive?.metadata).toMatchObject({ trigger: 'policy', actor: 'system' });

    // The policy never showed anyone the archive's id: the task is restored by the id it had.
    const restoredId = await svc.restore(old.id, 'U1');
    expect(await t.repos.archivedTasks.findById(archive?.id ?? '')).toBeUndefined();
    moved = timers.advance(60_000);
    expect(svc.busy).toBe(true);
    expect(await svc.runOnce()).toBe(0);
    await moved;
    expect(await t.repos.tasks.findById(restoredId)).toBeDefined();

    t.clock.now += 20 * DAY; // recent is now 31 days past completion
    moved = timers.advance(60_000);
    expect(svc.busy).toBe(true);
    expect(await svc.runOnce()).toBe(1);
    await moved;
    expect(await t.repos.tasks.findById(recent.id)).toBeUndefined();

    await svc.stop();
    expect(timers.pendingTimers).toBe(0);
    await timers.advance(10 * 60_000);
    expect(svc.busy).toBe(false);
  });

  it('skips tasks the validation refuses and archives the rest in the same run', async () => {
    const parent = await completedTask(t.repos);
    const other = await completedTask(t.repos);
    const child = await t.repos.tasks.create(newTaskInput({ parentTaskId: parent.id }));
    t.clock.now += 40 * DAY;
    const svc = service({ policy: { retentionDays: 30 } });
    expect(await svc.runOnce()).toBe(1);
    expect(await t.repos.tasks.findById(parent.id)).toBeDefined();
    expect(await t.repos.tasks.findById(other.id)).toBeUndefined();
    await t.repos.tasks.transition(child.id, 'failed');
    expect(await svc.runOnce()).toBe(1);
    expect(await t.repos.tasks.findById(parent.id)).toBeUndefined();
  });

  it('archives one batch per run, newest first below the cutoff, over more candidates than one page', async () => {
    const made: string[] = [];
    for (let i = 0; i < 130; i++) {
      t.clock.now += 60_000;
      made.push((await completedTask(t.repos)).id);
    }
    // A parent whose subtask still runs is refused, and does not count against the batch.
    const refused = made[125] ?? '';
    await t.repos.tasks.create(newTaskInput({ parentTaskId: refused }));
    t.clock.now += 40 * DAY;
    const svc = service({ policy: { retentionDays: 30, batchSize: 110 } });
    const left = async () => new Set((await t.repos.tasks.list({ status: 'completed' })).map((x) => x.id));

    expect(await svc.runOnce()).toBe(110);
    const newest = made.filter((id) => id !== refused).slice(-110);
    const after = await left();
    for (const id of newest) expect(after.has(id)).toBe(false);
    expect([...after].sort()).toEqual([...made.slice(0, 19), refused].sort());

    expect(await svc.runOnce()).toBe(19);
    expect([...(await left())]).toEqual([refused]);
    expect(await svc.runOnce()).toBe(0);
  });

  it('does nothing when retention is disabled', async () => {
    await completedTask(t.repos);
    t.clock.now += 365 * DAY;
    const svc = service({ policy: { retentionDays: 0 } });
    svc.start();
    expect(timers.pendingTimers).toBe(0);
    await timers.advance(DAY);
    expect(svc.busy).toBe(false);
    expect(await svc.runOnce()).toBe(0);
    expect(await t.repos.tasks.list()).toHaveLength(1);
  });
});
