import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '@bematic/agent';
import { createMessage, systemClock } from '@bematic/protocol';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualExecutor } from '../../../agent/test/support/manual-executor.js';
import { PostgresAgentRelay } from '../../src/cluster/agent-relay.js';
import { CacheBus } from '../../src/cluster/cache-bus.js';
import { createDatabase, type Database } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations/index.js';
import type { GatewayConfig } from '../../src/gateway/index.js';
import {
  type CloudHarness,
  METRICS,
  RawAgent,
  removeDir,
  seedProject,
  seedTask,
  startCloud,
} from './harness.js';

const postgresUrl = process.env.BEMATIC_TEST_POSTGRES_URL;

/** Two gateways on one PostgreSQL schema, as two cloud instances would be; the agent's socket is on B. */
describe.skipIf(!postgresUrl)('cross-instance routing (PostgreSQL)', () => {
  const schema = `bematic_xi_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const sep = postgresUrl?.includes('?') ? '&' : '?';
  const url = `${postgresUrl}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  let admin: Database;
  let a: CloudHarness;
  let b: CloudHarness;

  /** As startCloud wires it: the relay is a channel of the instance's one bus (its LISTEN session). */
  const instance = async (id: string, config: Partial<GatewayConfig> = {}) => {
    const database = await createDatabase(postgresUrl ?? '', { schema });
    const logger = pino({ level: 'silent' });
    const bus = new CacheBus({ connectionString: url, instanceId: id, clock: systemClock, logger });
    await bus.start({ drop: () => {}, dropAll: () => {} });
    const cloud = await startCloud({
      database,
      relay: new PostgresAgentRelay({ bus, logger }),
      instanceId: id,
      config: { heartbeatIntervalMs: 60_000, ...config },
    });
    await cloud.gateway.ready;
    buses.set(cloud, bus);
    return cloud;
  };
  const buses = new Map<CloudHarness, CacheBus>();
  const busOf = (cloud: CloudHarness): CacheBus => {
    const bus = buses.get(cloud);
    if (!bus) throw new Error('this cloud has no cache bus');
    return bus;
  };

  beforeAll(async () => {
    admin = await createDatabase(postgresUrl ?? '', { schema });
    await migrateToLatest(admin);
  });
  afterEach(async () => {
    await a?.stop();
    await b?.stop();
    for (const bus of buses.values()) await bus.close();
    buses.clear();
    removeDir(a.dir);
    removeDir(b.dir);
  });
  afterAll(async () => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db);
    await admin.close();
  });

  it('lists an agent B holds as online on A too, with the health B writes; offline on both once it leaves', async () => {
    a = await instance('a');
    b = await instance('b');
    const agentId = `box-${randomUUID().slice(0, 8)}`;
    const key = (await a.gateway.apiKeys.create(agentId)).key;
    const { agent } = await RawAgent.connect(b.url, { agentId, apiKey: key });
    const listed = async (cloud: CloudHarness) =>
      (await cloud.gateway.directory.listAgents({ limit: 10, text: agentId })).agents[0];
    await expect
      .poll(() => listed(a))
      .toMatchObject({
        agentId,
        online: true,
        overloaded: false,
        circuit: 'closed',
        hostname: 'test-host',
        maxConcurrentTasks: 3,
        // Live facts only the holder has.
        connectedAt: null,
        metrics: null,
      });
    agent.send('AGENT_STATUS', { overloaded: true, maxConcurrentTasks: 3, metrics: METRICS });
    await expect.poll(() => listed(a)).toMatchObject({ online: true, overloaded: true });
    expect(await listed(b)).toMatchObject({
      online: true,
      overloaded: true,
      connectedAt: expect.any(Number),
      metrics: METRICS,
    });
    const onlineOnA = async () =>
      (await a.gateway.directory.listAgents({ limit: 10, text: agentId, status: 'online' })).agents;
    expect(await onlineOnA()).toHaveLength(1);
    await agent.close();
    await expect.poll(() => listed(a)).toMatchObject({ online: false });
    expect(await onlineOnA()).toEqual([]);
    expect(await listed(b)).toMatchObject({ online: false });
  });

  it('a task dispatched on A reaches the agent on B, once; its cancel and a permission answer from A do too', async () => {
    a = await instance('a');
    b = await instance('b');
    const agentId = `box-${randomUUID().slice(0, 8)}`;
    const key = (await a.gateway.apiKeys.create(agentId)).key;
    const { agent } = await RawAgent.connect(b.url, { agentId, apiKey: key });
    await b.log.wait('agent.online');
    // Presence says B holds it (written on connect).
    await expect.poll(async () => (await a.repos.agents.findById(agentId))?.instanceId).toBe('b');

    const project = await seedProject(a.repos, agentId);
    const task = await seedTask(a.repos, project);
    const dispatched = await a.gateway.dispatcher.dispatch(task);
    expect(dispatched).toMatchObject({ agentId, sent: false, queued: false, agentOnline: true });
    const submit = await agent.next('TASK_SUBMIT');
    expect(submit.payload).toMatchObject({ taskId: task.id, attempt: 1 });
    expect(await b.repos.tasks.findById(task.id)).toMatchObject({ status: 'submitted', attempt: 1 });
    agent.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false });
    await b.log.wait('task.acknowledged', (e) => e.task.id === task.id);
    expect(await b.repos.offlineQueue.findByTask(task.id)).toBeUndefined();

    // A permission answer decided on A goes through B to the agent.
    const answered = await a.gateway.routes.send(
      agentId,
      createMessage('PERMISSION_RESPONSE', {
        taskId: task.id,
        requestId: 'req-1',
        decision: 'approved',
        attempt: 1,
      }),
    );
    expect(answered).toBe(true);
    expect((await agent.next('PERMISSION_RESPONSE')).payload).toMatchObject({ requestId: 'req-1' });

    // A cancel on A reaches the agent through B, which applies the agent's confirmation.
    expect(await a.gateway.dispatcher.cancel(task.id, 'not needed', 'U1')).toEqual({
      outcome: 'sent-to-agent',
    });
    expect((await agent.next('TASK_CANCEL')).payload).toMatchObject({ taskId: task.id, attempt: 1 });
    expect(await a.repos.cancelRequests.find(task.id)).toMatchObject({ actor: 'U1', reason: 'not needed' });
    agent.send('TASK_CANCELLED', { taskId: task.id, reason: 'not needed' });
    await b.log.wait('task.cancelled', (e) => e.task.id === task.id);
    // Ended once, where the reply arrived; nothing is owed any more.
    expect(a.log.of('task.cancelled')).toEqual([]);
    await expect.poll(() => a.repos.cancelRequests.find(task.id)).toBeUndefined();

    // Exactly one TASK_SUBMIT went out, from B.
    expect(agent.received.filter((m) => m.type === 'TASK_SUBMIT')).toEqual([]);
    expect(a.log.of('task.submitted')).toEqual([]);
    expect(b.log.of('task.submitted').map((e) => e.task.id)).toEqual([task.id]);
    await agent.close();
  });

  it('a hand-over whose notice is lost (the holder was not listening) is sent by the holder: its safety sweep starts a new attempt', async () => {
    a = await instance('a');
    const holderId = `b-${randomUUID().slice(0, 8)}`;
    b = await instance(holderId, { outboxSafetySweepMs: 100 });
    const agentId = `box-${randomUUID().slice(0, 8)}`;
    const key = (await a.gateway.apiKeys.create(agentId)).key;
    const { agent } = await RawAgent.connect(b.url, { agentId, apiKey: key });
    await expect.poll(async () => (await a.repos.agents.findById(agentId))?.instanceId).toBe(holderId);

    // B's listening session is cut: the notice of the next dispatch reaches nobody.
    const lost = once(busOf(b), 'lost');
    await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${`bematic-cache:${holderId}`}`.execute(
      admin.db,
    );
    await lost;
    const project = await seedProject(a.repos, agentId);
    const task = await seedTask(a.repos, project);
    expect(await a.gateway.dispatcher.dispatch(task)).toMatchObject({ agentId, sent: false, queued: false });
    // A began attempt 1 with the row, in one transaction.
    expect(await a.repos.tasks.findById(task.id)).toMatchObject({ status: 'submitted', attempt: 1 });
    expect(await a.repos.offlineQueue.findByTask(task.id)).toMatchObject({ agentId, attempts: 1 });

    const submit = await agent.next('TASK_SUBMIT');
    expect(submit.payload).toMatchObject({ taskId: task.id, attempt: 2 });
    agent.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false, attempt: 2 });
    await b.log.wait('task.started', (e) => e.task.id === task.id);
    expect(agent.received.filter((m) => m.type === 'TASK_SUBMIT')).toEqual([]);
    await agent.close();
  });

  it("routes by the health B writes to presence: an overloaded agent is passed over, a full one gives way to one with a free slot, and with none able the task waits until B's agent can take it", async () => {
    a = await instance('a');
    b = await instance('b');
    const primaryId = `box-${randomUUID().slice(0, 8)}`;
    const fallbackId = `box-${randomUUID().slice(0, 8)}`;
    const primary = (
      await RawAgent.connect(b.url, {
        agentId: primaryId,
        apiKey: (await a.gateway.apiKeys.create(primaryId)).key,
      })
    ).agent;
    const fallback = (
      await RawAgent.connect(b.url, {
        agentId: fallbackId,
        apiKey: (await a.gateway.apiKeys.create(fallbackId)).key,
      })
    ).agent;
    const healthOnA = async (agentId: string) => (await a.repos.agents.findById(agentId))?.health;
    await expect.poll(() => healthOnA(primaryId)).toMatchObject({ health: 'healthy', maxConcurrentTasks: 3 });
    await expect.poll(() => healthOnA(fallbackId)).toMatchObject({ health: 'healthy' });
    const project = await seedProject(a.repos, primaryId, [fallbackId]);
    const status = (agent: RawAgent, overloaded: boolean, activeTasks = 0) =>
      agent.send('AGENT_STATUS', { overloaded, maxConcurrentTasks: 3, metrics: { ...METRICS, activeTasks } });

    // The primary says it is overloaded: A sees it and hands the task to the fallback.
    status(primary, true);
    await expect.poll(() => healthOnA(primaryId)).toMatchObject({ health: 'overloaded' });
    const first = await seedTask(a.repos, project);
    expect(await a.gateway.dispatcher.dispatch(first)).toMatchObject({ agentId: fallbackId, queued: false });
    expect((await fallback.next('TASK_SUBMIT')).payload).toMatchObject({ taskId: first.id });

    // Healthy again but running 3 of 3: the fallback, with a free slot, gets the next one.
    status(primary, false, 3);
    await expect.poll(() => healthOnA(primaryId)).toMatchObject({ health: 'healthy', activeTasks: 3 });
    const second = await seedTask(a.repos, project);
    expect(await a.gateway.dispatcher.dispatch(second)).toMatchObject({ agentId: fallbackId, queued: false });
    expect((await fallback.next('TASK_SUBMIT')).payload).toMatchObject({ taskId: second.id });

    // Both overloaded: the task waits in the primary's queue, saying why; B sends it once the primary can.
    status(primary, true);
    status(fallback, true);
    await expect.poll(() => healthOnA(primaryId)).toMatchObject({ health: 'overloaded' });
    await expect.poll(() => healthOnA(fallbackId)).toMatchObject({ health: 'overloaded' });
    const third = await seedTask(a.repos, project);
    expect(await a.gateway.dispatcher.dispatch(third)).toMatchObject({
      agentId: primaryId,
      queued: true,
      agentOnline: true,
      reason: expect.stringMatching(/busy/),
    });
    expect(await a.repos.tasks.findById(third.id)).toMatchObject({ status: 'queued' });
    status(primary, false);
    expect((await primary.next('TASK_SUBMIT')).payload).toMatchObject({ taskId: third.id, attempt: 1 });
    expect([...primary.received, ...fallback.received].filter((m) => m.type === 'TASK_SUBMIT')).toEqual([]);
    await primary.close();
    await fallback.close();
  });

  /** A task running on the agent held by B, and B's listening session cut: what A relays to it is lost. */
  const runningOnDeafHolder = async (holderConfig: Partial<GatewayConfig> = {}) => {
    a = await instance('a');
    const holderId = `b-${randomUUID().slice(0, 8)}`;
    b = await instance(holderId, holderConfig);
    const agentId = `box-${randomUUID().slice(0, 8)}`;
    const key = (await a.gateway.apiKeys.create(agentId)).key;
    const { agent } = await RawAgent.connect(b.url, { agentId, apiKey: key });
    await expect.poll(async () => (await a.repos.agents.findById(agentId))?.instanceId).toBe(holderId);
    const project = await seedProject(a.repos, agentId);
    const task = await seedTask(a.repos, project);
    await a.gateway.dispatcher.dispatch(task);
    await agent.next('TASK_SUBMIT');
    agent.send('TASK_ACK', { taskId: task.id, accepted: true, queued: false });
    await b.log.wait('task.started', (e) => e.task.id === task.id);
    const lost = once(busOf(b), 'lost');
    await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${`bematic-cache:${holderId}`}`.execute(
      admin.db,
    );
    await lost;
    return { agentId, key, agent, task };
  };

  it('a cancel asked for on A whose frame was lost with B is finished by A when the agent reconnects there: the agent is told to stop it and its confirmation ends it once', async () => {
    const { agentId, key, agent, task } = await runningOnDeafHolder();
    expect(await a.gateway.dispatcher.cancel(task.id, 'not needed', 'U1')).toEqual({
      outcome: 'sent-to-agent',
    });
    await agent.close();
    await b.log.wait('agent.offline');

    const again = await RawAgent.connect(a.url, { agentId, apiKey: key, activeTaskIds: [task.id] });
    expect(again.response.payload.cancelTaskIds).toEqual([task.id]);
    again.agent.send('TASK_CANCELLED', { taskId: task.id, reason: 'not needed', attempt: 1 });
    const cancelled = await a.log.wait('task.cancelled', (e) => e.task.id === task.id);
    expect(cancelled.task).toMatchObject({ status: 'cancelled' });
    expect(b.log.of('task.cancelled')).toEqual([]);
    expect(await a.repos.audit.list({ action: 'task.cancelled', resourceId: task.id })).toHaveLength(1);
    await expect.poll(() => a.repos.cancelRequests.find(task.id)).toBeUndefined();
    await again.agent.close();
  });

  it('a cancel asked for on A is honoured by B when the agent never comes back: cancelled as asked, not lost', async () => {
    const { agent, task } = await runningOnDeafHolder({ reconnectGraceMs: 200 });
    expect(await a.gateway.dispatcher.cancel(task.id, 'not needed', 'U1')).toEqual({
      outcome: 'sent-to-agent',
    });
    await agent.close();
    const cancelled = await b.log.wait('task.cancelled', (e) => e.task.id === task.id);
    expect(cancelled.task).toMatchObject({ status: 'cancelled' });
    expect(b.log.of('task.failed')).toEqual([]);
    expect(a.log.of('task.cancelled')).toEqual([]);
    expect(await a.repos.audit.list({ action: 'task.cancelled', resourceId: task.id })).toMatchObject([
      { actor: 'U1' },
    ]);
    expect(await a.repos.cancelRequests.find(task.id)).toBeUndefined();
  });

  it('an agent on B that refuses a task as overloaded is seen as such on A at once, before it reports its status', async () => {
    a = await instance('a');
    b = await instance('b');
    const primaryId = `box-${randomUUID().slice(0, 8)}`;
    const fallbackId = `box-${randomUUID().slice(0, 8)}`;
    const primary = (
      await RawAgent.connect(b.url, {
        agentId: primaryId,
        apiKey: (await a.gateway.apiKeys.create(primaryId)).key,
      })
    ).agent;
    const fallback = (
      await RawAgent.connect(b.url, {
        agentId: fallbackId,
        apiKey: (await a.gateway.apiKeys.create(fallbackId)).key,
      })
    ).agent;
    const healthOnA = async (agentId: string) => (await a.repos.agents.findById(agentId))?.health?.health;
    await expect.poll(() => healthOnA(primaryId)).toBe('healthy');
    await expect.poll(() => healthOnA(fallbackId)).toBe('healthy');
    const project = await seedProject(a.repos, primaryId, [fallbackId]);
    const first = await seedTask(a.repos, project);
    await a.gateway.dispatcher.dispatch(first);
    expect((await primary.next('TASK_SUBMIT')).payload).toMatchObject({ taskId: first.id });
    primary.send('TASK_ACK', {
      taskId: first.id,
      accepted: false,
      queued: false,
      code: 'OVERLOADED',
      reason: 'cpu',
    });
    await expect.poll(() => healthOnA(primaryId)).toBe('overloaded');
    const second = await seedTask(a.repos, project);
    expect(await a.gateway.dispatcher.dispatch(second)).toMatchObject({ agentId: fallbackId, queued: false });
    await primary.close();
    await fallback.close();
  });

  it('rows waiting for an agent are sent by the instance it connects to, whoever wrote them', async () => {
    a = await instance('a');
    b = await instance('b');
    const agentId = `box-${randomUUID().slice(0, 8)}`;
    const key = (await a.gateway.apiKeys.create(agentId)).key;
    const project = await seedProject(a.repos, agentId);
    const tasks = [await seedTask(a.repos, project), await seedTask(a.repos, project)];
    for (const t of tasks) expect(await a.gateway.dispatcher.dispatch(t)).toMatchObject({ queued: true });

    const { agent } = await RawAgent.connect(b.url, { agentId, apiKey: key });
    const got = [await agent.next('TASK_SUBMIT'), await agent.next('TASK_SUBMIT')].map(
      (m) => m.payload.taskId,
    );
    expect(got.sort()).toEqual(tasks.map((t) => t.id).sort());
    await agent.close();
  });

  it('an instance that dies (sessions and sockets cut) loses nothing: the agent fails over, its running task is committed once through the next instance, its waiting tasks are delivered', async () => {
    a = await instance('a');
    b = await instance('b');
    const agentId = `box-${randomUUID().slice(0, 8)}`;
    const key = (await a.gateway.apiKeys.create(agentId)).key;
    const checkout = mkdtempSync(path.join(tmpdir(), 'bematic-xi-checkout-'));
    const project = await seedProject(a.repos, agentId, [], checkout);
    const executor = new ManualExecutor();
    const agent = new Agent({
      config: {
        cloudUrls: [b.url, a.url],
        agentId,
        agentKey: key,
        maxConcurrentTasks: 1,
        roots: [checkout],
        cpuThreshold: 101,
        memoryThreshold: 101,
        reconnectMaxMs: 200,
        stateDir: undefined,
        worktreeDir: `${checkout}-worktrees`,
        branchPrefix: 'bematic/',
        projectConcurrency: 1,
        githubApiUrl: 'https://api.github.com',
        githubToken: undefined,
      },
      executor,
      reconnectBaseMs: 10,
      random: () => 0.5,
    });
    try {
      agent.start();
      await b.log.wait('agent.online');
      await expect.poll(async () => (await a.repos.agents.findById(agentId))?.instanceId).toBe('b');
      // Submitted on A, running on the agent held by B; a second one waits for the free slot.
      const running = await seedTask(a.repos, project);
      const waiting = await seedTask(a.repos, project);
      await a.gateway.dispatcher.dispatch(running);
      await executor.started(running.id);
      await b.log.wait('task.started', (e) => e.task.id === running.id);
      await a.gateway.dispatcher.dispatch(waiting);
      await b.log.wait('task.acknowledged', (e) => e.task.id === waiting.id);

      // B dies: nothing more from it reaches the database. A task created meanwhile waits in the outbox for
      // the agent B still appears to hold.
      await b.db.close();
      await buses.get(b)?.close();
      const orphan = await seedTask(a.repos, project);
      expect(await a.gateway.dispatcher.dispatch(orphan)).toMatchObject({ sent: false, queued: false });
      b.gateway.manager.disconnect(agentId, 'killed');
      await a.log.wait('agent.online');
      executor.complete(running.id);
      const done = await a.log.wait('task.completed', (e) => e.task.id === running.id);
      expect(done.task).toMatchObject({ status: 'completed' });
      for (const next of [waiting, orphan]) {
        await executor.started(next.id);
        executor.complete(next.id);
        await a.log.wait('task.completed', (e) => e.task.id === next.id);
      }

      expect(a.log.of('task.completed').map((e) => e.task.id)).toEqual([running.id, waiting.id, orphan.id]);
      for (const t of [running, waiting, orphan])
        expect(await a.repos.audit.list({ action: 'task.completed', resourceId: t.id })).toHaveLength(1);
      expect(a.log.of('task.failed')).toEqual([]);
    } finally {
      await agent.stop({ graceful: false });
      removeDir(checkout);
    }
  });
});
