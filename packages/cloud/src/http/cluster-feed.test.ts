import { randomUUID } from 'node:crypto';
import { ManualClock } from '@bematic/testkit';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newTaskInput } from '../../test/support/database.js';
import { CacheBus } from '../cluster/cache-bus.js';
import { createDatabase, type Database } from '../db/database.js';
import { migrateToLatest } from '../db/migrations/index.js';
import { createRepositories } from '../db/repositories/index.js';
import type { Repositories } from '../db/repositories/types.js';
import { TaskEvents } from '../tasks/task-events.js';
import { ClusterFeed, FEED_CHANNEL, type FeedEvent } from './cluster-feed.js';

const url = process.env.BEMATIC_TEST_POSTGRES_URL;

describe.skipIf(!url)('ClusterFeed: the dashboard feed between instances', () => {
  const schema = `bematic_feed_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const inSchema = `${url}${url?.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const buses: CacheBus[] = [];
  let database: Database;
  let repos: Repositories;

  const instance = async (instanceId: string, watching = () => true) => {
    const bus = new CacheBus({
      connectionString: inSchema,
      instanceId,
      clock: new ManualClock(),
      logger: pino({ level: 'silent' }),
    });
    buses.push(bus);
    const feed = new ClusterFeed({ bus, tasks: repos.tasks, logger: pino({ level: 'silent' }) });
    await bus.start({ drop: () => {}, dropAll: () => {} });
    const events = new TaskEvents();
    feed.attach(events);
    const received: FeedEvent[] = [];
    const waiters: Array<{ count: number; resolve: () => void }> = [];
    feed.subscribe((e) => {
      received.push(e);
      for (const w of waiters.filter((w) => received.length >= w.count)) w.resolve();
    }, watching);
    const receivedCount = (count: number) =>
      new Promise<void>((resolve) => {
        if (received.length >= count) resolve();
        else waiters.push({ count, resolve });
      });
    return { bus, feed, events, received, receivedCount };
  };

  beforeAll(async () => {
    database = await createDatabase(url ?? '', { schema });
    await migrateToLatest(database);
    repos = createRepositories(database.db);
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(database.db);
    await database.close();
  });

  it('sends ids and small facts, reads the row on arrival, keeps a task in order, and ignores what it cannot read', async () => {
    const a = await instance('a');
    const b = await instance('b');
    const task = await repos.tasks.create(newTaskInput());
    // What a broken or foreign peer might write on the channel: ignored.
    for (const body of [
      { kind: 'task', event: 'task.deleted', taskId: task.id },
      { kind: 'agent', payload: {} },
    ]) {
      const payload = JSON.stringify({ ns: schema, from: 'peer', body });
      await sql`select pg_notify(${FEED_CHANNEL}, ${payload})`.execute(database.db);
    }
    await repos.tasks.transition(task.id, 'submitted');
    a.events.emit('task.created', { task });
    a.events.emit('task.submitted', { task });
    a.events.emit('task.progress', {
      task,
      progress: { taskId: task.id, attempt: 1, kind: 'status', message: 'y'.repeat(2000) },
    });
    const metrics = {
      cpuPercent: 5,
      memoryPercent: 10,
      rssMb: 100,
      loadAvg1m: 0.5,
      activeTasks: 1,
      queuedTasks: 0,
    };
    a.events.emit('agent.heartbeat', { agentId: 'agent-1', rttMs: 3, metrics });
    a.events.emit('agent.offline', { agentId: 'agent-1', reason: 'connection closed', reconnectEtaMs: null });
    await b.receivedCount(5);
    expect(b.received).toHaveLength(5);
    const tasks = b.received.filter((e) => e.kind === 'task');
    expect(tasks.map((e) => e.event)).toEqual(['task.created', 'task.submitted', 'task.progress']);
    // Each read is the row as it is now, not what the sender held.
    expect(tasks.every((e) => e.kind === 'task' && e.task.status === 'submitted')).toBe(true);
    const progress = tasks[2];
    expect(progress?.kind === 'task' && progress.progress?.length).toBe(2000);
    expect(b.received.filter((e) => e.kind === 'agent')).toEqual([
      { kind: 'agent', event: 'agent.heartbeat', payload: { agentId: 'agent-1', rttMs: 3, metrics } },
      {
        kind: 'agent',
        event: 'agent.offline',
        payload: { agentId: 'agent-1', reason: 'connection closed', reconnectEtaMs: null },
      },
    ]);
    expect(a.received).toEqual([]);
  });
  it('reads no rows while nobody watches; agent events still arrive', async () => {
    let watching = false;
    const a = await instance('c');
    const b = await instance('d', () => watching);
    const task = await repos.tasks.create(newTaskInput());
    a.events.emit('task.created', { task });
    a.events.emit('agent.online', { agentId: 'agent-2' });
    await b.receivedCount(1);
    watching = true;
    a.events.emit('task.started', { task });
    await b.receivedCount(2);
    expect(b.received.map((e) => (e.kind === 'task' ? e.event : e.kind))).toEqual(['agent', 'task.started']);
  });
});
