import { systemClock } from '@bematic/protocol';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RecordingDispatcher,
  RecordingSurface,
  request,
  sqliteRepos,
} from '../../test/support/conversation.js';
import { provisionAgent } from '../app/provisioning.js';
import { ApiKeyService } from '../auth/api-keys.js';
import { BotRegistry } from '../bots/bot-registry.js';
import { createModelStrategy } from '../bots/model-routing.js';
import { CommandService } from '../commands/command-service.js';
import { createCommandContext } from '../commands/context.js';
import { createInboundPipeline } from '../commands/inbound-pipeline.js';
import type { Repositories } from '../db/repositories/types.js';
import { AgentManager } from '../gateway/agent-manager.js';
import { DashboardReads } from '../http/dashboard-reads.js';
import { RetentionService } from '../retention/retention-service.js';
import { TaskEvents } from '../tasks/task-events.js';
import { TaskLifecycle } from '../tasks/task-lifecycle.js';
import { Cache } from './cache.js';
import { CacheInvalidation } from './invalidation.js';

/**
 * Each write path, wired the way startCloud wires it: read through the cache,
 * write, read again — the second read must see the write, with a TTL long
 * enough that only invalidation can explain it.
 */
describe('cache invalidation: no stale read after any write path', () => {
  let env: Awaited<ReturnType<typeof sqliteRepos>>;
  let repos: Repositories;
  let reads: DashboardReads;
  let events: TaskEvents;
  let retention: RetentionService;
  let surface: RecordingSurface;
  let pipeline: ReturnType<typeof createInboundPipeline>;
  let invalidation: CacheInvalidation;
  let cache: Cache;

  beforeEach(async () => {
    env = await sqliteRepos();
    // The clock stands still: nothing expires, so only an invalidation explains a fresh read.
    cache = new Cache({ name: 'test', ttlMs: 3_600_000, now: () => 0 });
    invalidation = new CacheInvalidation(cache);
    repos = { ...env.repos, projects: invalidation.projects(env.repos.projects) };
    events = new TaskEvents();
    invalidation.attachToEvents(events);
    const agents = new AgentManager({
      repos,
      events,
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      heartbeatIntervalMs: 60_000,
    });
    reads = new DashboardReads(repos, cache, agents);
    retention = new RetentionService({ repos, invalidation });
    surface = new RecordingSurface();
    // The task never reached an agent, so cancelling it is the command's own write.
    const dispatcher = new RecordingDispatcher();
    dispatcher.cancelOutcome = { outcome: 'not-found' };
    const commands = new CommandService(
      createCommandContext({
        repos,
        dispatcher,
        agents,
        retention: {
          archive: async (taskId, reason, actor) => ({
            id: (await retention.archive(taskId, reason, actor)).archiveId,
          }),
          restore: async (id, actor) => ({ id: await retention.restore(id, actor) }),
        },
        bots: new BotRegistry(),
        modelStrategy: createModelStrategy(),
        surfaceFor: () => surface,
        tasks: new TaskLifecycle({ repos, events, logger: pino({ level: 'silent' }) }),
      }),
    );
    pipeline = createInboundPipeline({ commands, repos, auth: { adminUserIds: ['UADMIN'] } });
  });
  afterEach(async () => {
    await env.cleanup();
  });

  const slash = (text: string, userId = 'UADMIN', channelId = 'C1') =>
    pipeline.handle(request(surface, { kind: 'slash', text, userId, channelId }));
  const mention = (text: string) => pipeline.handle(request(surface, { kind: 'mention', text }));
  const names = async () => (await reads.projects()).map((p) => p.name);

  it('/bm projects add, update and remove', async () => {
    expect(await names()).toEqual([]);
    await slash('projects add agent-1 /srv/web --name web');
    expect(await names()).toEqual(['web']);
    await slash('projects add agent-1 /srv/web --name renamed');
    expect(await names()).toEqual(['renamed']);
    await slash('projects remove');
    expect(await names()).toEqual([]);
  });

  it('provisioning an agent', async () => {
    expect(await names()).toEqual([]);
    const apiKeys = new ApiKeyService({ apiKeys: repos.apiKeys, audit: repos.audit });
    await provisionAgent(
      { repos, apiKeys },
      { agentId: 'a1', channelId: 'C9', localPath: '/srv/x', projectName: 'x', keyLabel: 'k' },
    );
    expect(await names()).toEqual(['x']);
  });

  it('a task created, then cancelled', async () => {
    await slash('projects add agent-1 /srv/web --name web');
    expect((await reads.stats()).total).toBe(0);
    expect((await reads.listTasks({ limit: 10 })).tasks).toEqual([]);
    await mention('code fix the login bug');
    const [summary] = (await reads.listTasks({ limit: 10 })).tasks;
    expect(summary).toBeDefined();
    expect((await reads.stats()).total).toBe(1);
    expect((await reads.getTask(summary!.id))?.status).toBe('pending');
    await slash(`cancel ${summary!.id}`, 'U1');
    expect((await reads.getTask(summary!.id))?.status).toBe('cancelled');
    expect((await reads.listTasks({ limit: 10 })).tasks[0]?.status).toBe('cancelled');
    expect((await reads.stats()).counts.cancelled).toBe(1);
  });

  it('/bm archive and /bm restore', async () => {
    await slash('projects add agent-1 /srv/web --name web');
    await mention('code fix the login bug');
    const [summary] = (await reads.listTasks({ limit: 10 })).tasks;
    await slash(`cancel ${summary!.id}`, 'U1');
    expect((await reads.stats()).archived).toBe(0);
    await slash(`archive ${summary!.id}`);
    expect(await reads.getTask(summary!.id)).toBeUndefined();
    expect((await reads.listTasks({ limit: 10 })).tasks).toEqual([]);
    expect((await reads.stats()).archived).toBe(1);
    const [archive] = await repos.archivedTasks.list();
    await slash(`restore ${archive!.id}`);
    const [restored] = (await reads.listTasks({ limit: 10 })).tasks;
    expect(restored?.status).toBe('cancelled');
    expect((await reads.stats()).archived).toBe(0);
  });

  it('agent state changes on the bus drop every cached page of the agent listing', async () => {
    const first = () => reads.listAgents({ limit: 10 });
    const online = () => reads.listAgents({ limit: 10, status: 'online' });
    expect((await first()).summary).toEqual({ online: 0, offline: 0, total: 0 });
    expect((await online()).agents).toEqual([]);
    await repos.agents.upsert({ id: 'a1', status: 'online' });
    events.emit('agent.online', { agentId: 'a1' });
    expect((await first()).summary).toEqual({ online: 1, offline: 0, total: 1 });
    expect((await online()).agents.map((a) => a.agentId)).toEqual(['a1']);
    await repos.agents.upsert({ id: 'a1', status: 'offline' });
    events.emit('agent.offline', { agentId: 'a1', reason: 'gone', reconnectEtaMs: null });
    expect((await online()).agents).toEqual([]);
  });
});
