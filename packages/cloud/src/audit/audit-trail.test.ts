import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { completedTask, openTestDb, type TestDb } from '../../test/support/database.js';
import type { AuditLogRepository } from '../db/repositories/types.js';
import { TaskEvents } from '../tasks/task-events.js';
import { AuditTrail } from './audit-trail.js';

describe('AuditTrail', () => {
  let t: TestDb;
  beforeEach(async () => {
    t = await openTestDb();
  });
  afterEach(() => t.close());

  it('records typed actions', async () => {
    const audit = new AuditTrail(t.repos.audit);
    const entry = await audit.record('key.revoked', {
      actor: 'U_admin',
      resourceType: 'key',
      resourceId: 'key_1',
    });
    expect(entry).toMatchObject({
      action: 'key.revoked',
      actor: 'U_admin',
      resourceId: 'key_1',
      details: {},
    });
    expect(await audit.list({ action: 'key.revoked' })).toHaveLength(1);
  });

  it('records only the lifecycle events it was asked to, and stops when detached', async () => {
    const audit = new AuditTrail(t.repos.audit);
    const events = new TaskEvents();
    const written: Promise<unknown>[] = [];
    const repo: AuditLogRepository = {
      ...t.repos.audit,
      log: (e) => {
        const p = t.repos.audit.log(e);
        written.push(p);
        return p;
      },
    };
    const trail = new AuditTrail(repo);
    const off = trail.attachToEvents(events, ['task.failed', 'agent.offline']);
    const task = await completedTask(t.repos);
    events.emit('task.completed', {
      task,
      message: {
        taskId: task.id,
        attempt: 1,
        result: 'ok',
        filesChanged: [],
        commandsRun: [],
        metrics: {
          inputTokens: 0,
          outputTokens: 0,
          cacheReadTokens: 0,
          cacheCreationTokens: 0,
          costUsd: 0,
          durationMs: 0,
          numTurns: 0,
          continuations: 0,
        },
      },
    });
    events.emit('task.failed', {
      task,
      message: { taskId: task.id, attempt: 1, error: 'timed out', recoverable: true, errorCode: 'TIMEOUT' },
    });
    events.emit('agent.offline', { agentId: 'a1', reason: 'heartbeat missed', reconnectEtaMs: null });
    off();
    events.emit('agent.offline', { agentId: 'a2', reason: 'x', reconnectEtaMs: null });
    await Promise.all(written);
    const entries = await audit.list();
    expect(entries.map((e) => e.action).sort()).toEqual(['agent.disconnected', 'task.failed']);
    expect(entries.find((e) => e.action === 'task.failed')).toMatchObject({
      actor: task.userId,
      resourceId: task.id,
      details: { errorCode: 'TIMEOUT', recoverable: true },
    });
    expect(entries.find((e) => e.action === 'agent.disconnected')).toMatchObject({
      resourceId: 'a1',
      details: { reason: 'heartbeat missed' },
    });
  });

  it('never throws when the log cannot be written', async () => {
    const broken: AuditLogRepository = {
      log: async () => {
        throw new Error('db down');
      },
      list: async () => [],
    };
    const trail = new AuditTrail(broken);
    await expect(trail.record('rate_limited', { actor: 'U1' })).resolves.toBeUndefined();
    const errors: unknown[] = [];
    const events = new TaskEvents((_, err) => errors.push(err));
    trail.attachToEvents(events, ['agent.online']);
    events.emit('agent.online', { agentId: 'a1' });
    await new Promise((r) => setImmediate(r));
    expect(errors).toEqual([]);
  });
});
