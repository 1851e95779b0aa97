import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RecordingSurface, request, sqliteRepos, textOf } from '../../test/support/conversation.js';
import type { InboundRequest } from '../chat/inbound.js';
import type { Repositories, UserRepository } from '../db/repositories/types.js';
import { createAuthMiddleware } from './auth.js';
import { can } from './permissions.js';
import { runPipeline } from './pipeline.js';
import { createProjectMiddleware, PROJECT_HOW_TO } from './project.js';
import { createRateLimitMiddleware, RateLimiter } from './rate-limit.js';
import { newContext } from './types.js';

const logger = pino({ level: 'silent' });

describe('permissions', () => {
  it.each([
    ['viewer', 'task.run', false],
    ['viewer', 'task.cancel.own', false],
    ['viewer', 'view', true],
    ['developer', 'task.cancel.own', true],
    ['developer', 'task.cancel.any', false],
    ['developer', 'project.register', false],
    ['admin', 'task.cancel.any', true],
    ['admin', 'user.manage', true],
  ] as const)('%s %s → %s', (role, perm, allowed) => {
    expect(can(role, perm)).toBe(allowed);
  });
});

describe('middleware stages', () => {
  let env: Awaited<ReturnType<typeof sqliteRepos>>;
  let repos: Repositories;
  const surface = new RecordingSurface();
  beforeEach(async () => {
    env = await sqliteRepos();
    repos = env.repos;
  });
  afterEach(async () => {
    vi.useRealTimers();
    await env.cleanup();
  });

  async function run(req: InboundRequest, stages: Parameters<typeof runPipeline>[1]) {
    const ctx = newContext(req, 'req-1');
    let reached = false;
    const timings: string[] = [];
    await runPipeline(
      ctx,
      stages,
      async (c) => {
        reached = true;
        c.tasksCreated++;
      },
      (stage) => timings.push(stage),
    );
    return { ctx, reached, timings };
  }

  it('auth registers unknown users with the default role', async () => {
    const auth = createAuthMiddleware(
      { users: repos.users, audit: repos.audit, logger },
      { defaultRole: 'viewer', adminUserIds: ['UADMIN'] },
    );
    const { ctx, reached, timings } = await run(
      request(surface, { kind: 'slash', text: 'help', userId: 'UNEW' }),
      [auth],
    );
    expect(reached).toBe(true);
    expect(ctx.user?.role).toBe('viewer');
    expect((await repos.users.findById('UNEW'))?.role).toBe('viewer');
    expect(timings).toEqual(['handler', 'auth']);
    const admin = await run(request(surface, { kind: 'slash', text: 'help', userId: 'UADMIN' }), [auth]);
    expect(admin.ctx.user?.role).toBe('admin');
  });

  it('auth fails closed when the user store errors, with a message and an audit entry', async () => {
    const broken: UserRepository = {
      ...repos.users,
      findById: async () => {
        throw new Error('database is locked');
      },
    };
    const auth = createAuthMiddleware({ users: broken, audit: repos.audit, logger });
    const req = request(surface, { kind: 'mention', text: 'code fix it' });
    const { reached, ctx } = await run(req, [auth]);
    expect(reached).toBe(false);
    expect(ctx.rejection?.code).toBe('auth_unavailable');
    expect(textOf(req.responses[0]!)).toMatch(/couldn't verify your permissions/);
    const audit = await repos.audit.list({ action: 'request.rejected' });
    expect(audit[0]?.details).toMatchObject({ code: 'auth_unavailable', error: 'database is locked' });
  });

  it('rate limit counts only task-creating requests and reports minutes and a progress bar', async () => {
    let now = 1_000_000;
    vi.useFakeTimers({ now, toFake: ['Date'] });
    const limiter = new RateLimiter('user-tasks', { limit: 3, windowMs: 3_600_000 });
    const limited: string[] = [];
    const rl = createRateLimitMiddleware({
      limiter,
      audit: repos.audit,
      onLimited: (scope) => limited.push(scope),
    });
    for (let i = 0; i < 5; i++) await run(request(surface, { kind: 'slash', text: 'status' }), [rl]);
    expect((await limiter.status('U1')).used).toBe(0);
    for (let i = 0; i < 3; i++) {
      expect((await run(request(surface, { kind: 'mention', text: 'code x' }), [rl])).reached).toBe(true);
      now += 60_000;
      vi.setSystemTime(now);
    }
    const req = request(surface, { kind: 'mention', text: 'code x' });
    const blocked = await run(req, [rl]);
    expect(blocked.reached).toBe(false);
    expect(limited).toEqual(['user']);
    const msg = textOf(req.responses[0]!);
    // Oldest hit at t0 frees at t0+60 min; we are at t0+3 min.
    expect(msg).toContain('Rate limit exceeded, try again in 57 minutes');
    expect(msg).toContain('▓▓▓▓▓▓▓▓▓▓` 3/3 used, resets in 57 min');
    expect((await repos.audit.list({ action: 'request.rejected' }))[0]?.details).toMatchObject({
      code: 'rate_limited',
    });
    now += 57 * 60_000;
    vi.setSystemTime(now);
    expect((await run(request(surface, { kind: 'mention', text: 'code x' }), [rl])).reached).toBe(true);
    expect(limited).toEqual(['user']);
  });

  it('a request that created no task gives its allowance back', async () => {
    const limiter = new RateLimiter('user-tasks', { limit: 1 });
    const rl = createRateLimitMiddleware({ limiter, audit: repos.audit });
    const ctx = newContext(request(surface, { kind: 'mention', text: 'nonsense' }), 'r');
    await runPipeline(ctx, [rl], async () => {});
    expect((await limiter.status('U1')).used).toBe(0);
    expect(await limiter.tryAcquire('U1')).toBe(true);
  });

  it('project stage explains how to link an unknown channel; slash commands pass', async () => {
    const stage = createProjectMiddleware({ projects: repos.projects, audit: repos.audit, logger });
    const req = request(surface, { kind: 'mention', text: 'code fix', channelId: 'CUNKNOWN' });
    const { reached } = await run(req, [stage]);
    expect(reached).toBe(false);
    expect(textOf(req.responses[0]!)).toContain(PROJECT_HOW_TO);
    expect(
      (await run(request(surface, { kind: 'slash', text: 'projects', channelId: 'CUNKNOWN' }), [stage]))
        .reached,
    ).toBe(true);
    await repos.projects.create({
      name: 'web',
      channelId: 'C9',
      agentId: 'a1',
      localPath: '/srv',
      defaultModel: null,
      maxBudgetUsd: null,
    });
    const linked = await run(request(surface, { kind: 'mention', text: 'code fix', channelId: 'C9' }), [
      stage,
    ]);
    expect(linked.ctx.project?.name).toBe('web');
  });
});
