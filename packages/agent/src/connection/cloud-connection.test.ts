import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createMessage } from '@bematic/protocol';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer } from 'ws';
import { FakeCloud } from '../../test/support/fake-cloud.js';
import { agentWsUrl } from '../config.js';
import { Backoff } from './backoff.js';
import { CloudConnection } from './cloud-connection.js';

const metrics = { cpuPercent: 1, memoryPercent: 2, rssMb: 3, loadAvg1m: 0, activeTasks: 0, queuedTasks: 0 };

let cloud: FakeCloud;
let connection: CloudConnection | undefined;

beforeEach(async () => {
  // Only timers are faked: sockets and the event loop stay real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  cloud = await FakeCloud.start({ heartbeatIntervalMs: 1000 });
});

afterEach(async () => {
  await connection?.stop();
  connection = undefined;
  await cloud.close();
  vi.useRealTimers();
});

function connect(apiKey = 'secret') {
  connection = new CloudConnection({
    urls: [agentWsUrl(cloud.url)!],
    agentId: 'a1',
    apiKey,
    agentVersion: 'test',
    hostname: 'h',
    maxConcurrentTasks: 1,
    reconciliation: () => ({ activeTaskIds: [], bufferedTaskIds: [] }),
    metrics: () => metrics,
    backoff: new Backoff({ maxMs: 8000, random: () => 0.999999, jitter: 'full' }),
    logger: pino({ level: 'silent' }),
  });
  connection.start();
  return connection;
}

async function nextDelay(c: CloudConnection): Promise<number> {
  const [delay] = await once(c, 'reconnect-scheduled');
  return delay as number;
}

describe('CloudConnection', () => {
  it('drops a silent cloud after 2.5 heartbeat intervals and reconnects', async () => {
    const c = connect();
    await once(c, 'authenticated');
    vi.advanceTimersByTime(2499);
    expect(c.state).toBe('ready');
    const disconnected = once(c, 'disconnected');
    const scheduled = nextDelay(c);
    vi.advanceTimersByTime(1);
    await disconnected;
    const delay = await scheduled;
    expect(delay).toBe(0); // the first retry after a good session is immediate
    const reauthed = once(c, 'authenticated');
    vi.advanceTimersByTime(delay);
    await reauthed;
    expect(cloud.connections).toBe(2);
  });

  it('stays connected while the cloud keeps talking', async () => {
    const c = connect();
    await once(c, 'authenticated');
    for (let i = 0; i < 4; i++) {
      vi.advanceTimersByTime(2000);
      await cloud.sync();
    }
    expect(c.state).toBe('ready');
    expect(cloud.connections).toBe(1);
    expect(cloud.ofType('HEARTBEAT_PONG')[0]?.payload.metrics).toEqual(metrics);
  });

  it('backs off exponentially while the cloud is unreachable and resets after auth', async () => {
    const c = connect();
    await once(c, 'authenticated');
    cloud.goOffline();
    const delays = [await nextDelay(c)];
    for (let i = 0; i < 4; i++) {
      const next = nextDelay(c);
      vi.advanceTimersByTime(delays.at(-1)!);
      delays.push(await next);
    }
    expect(delays).toEqual([0, 1000, 2000, 4000, 8000]);
    cloud.goOnline();
    const reauthed = once(c, 'authenticated');
    vi.advanceTimersByTime(8000);
    await reauthed;
    cloud.goOffline();
    expect(await nextDelay(c)).toBe(0);
  });

  it('does not hot-loop on a rejected key', async () => {
    const c = connect('wrong');
    const failures: string[] = [];
    c.on('auth-failed', (e) => failures.push(e));
    const delays = [await nextDelay(c)];
    for (let i = 0; i < 3; i++) {
      const next = nextDelay(c);
      vi.advanceTimersByTime(delays.at(-1)!);
      delays.push(await next);
    }
    expect(failures).toEqual(['invalid API key', 'invalid API key', 'invalid API key', 'invalid API key']);
    expect(delays).toEqual([1000, 1000, 2000, 4000]);
    expect(cloud.connections).toBe(4);
  });

  it('refuses to send a frame the cloud would refuse: it never reaches the wire, the next good one does', async () => {
    const c = connect();
    await once(c, 'authenticated');
    // A refusal without its code is invalid under the same schema the cloud parses with.
    const bad = createMessage('TASK_ACK', { taskId: 't1', attempt: 1, accepted: false, queued: false });
    await expect(c.send(bad)).rejects.toThrow(/TASK_ACK.*code/);
    const good = createMessage('TASK_ACK', {
      taskId: 't1',
      attempt: 1,
      accepted: false,
      queued: false,
      code: 'AT_CAPACITY',
    });
    await c.send(good);
    await cloud.sync();
    expect(cloud.ofType('TASK_ACK').map((m) => m.id)).toEqual([good.id]);
    expect(cloud.invalidFrames).toEqual([]);
  });

  it('waits the announced time after SYSTEM_SHUTDOWN', async () => {
    const c = connect();
    await once(c, 'authenticated');
    cloud.send('SYSTEM_SHUTDOWN', { reason: 'deploy', reconnectInMs: 5000 });
    expect(await nextDelay(c)).toBe(5000);
    const reauthed = once(c, 'authenticated');
    vi.advanceTimersByTime(4999);
    expect(cloud.connections).toBe(1);
    vi.advanceTimersByTime(1);
    await reauthed;
    expect(cloud.connections).toBe(2);
  });

  it('fails over to the next cloud instance on disconnect, with the usual backoff, and comes round again', async () => {
    const other = await FakeCloud.start({ heartbeatIntervalMs: 1000 });
    try {
      connection = new CloudConnection({
        urls: [agentWsUrl(cloud.url)!, agentWsUrl(other.url)!],
        agentId: 'a1',
        apiKey: 'secret',
        agentVersion: 'test',
        hostname: 'h',
        maxConcurrentTasks: 1,
        reconciliation: () => ({ activeTaskIds: [], bufferedTaskIds: [] }),
        metrics: () => metrics,
        backoff: new Backoff({ maxMs: 8000, random: () => 0.999999, jitter: 'full' }),
        logger: pino({ level: 'silent' }),
      });
      const c = connection;
      const tried: string[] = [];
      c.on('connecting', ({ url }) => tried.push(url));
      c.start();
      await once(c, 'authenticated');
      expect(c.url).toBe(agentWsUrl(cloud.url));

      // The first instance dies: the agent goes to the second at once (first retry after a good session).
      cloud.goOffline();
      expect(await nextDelay(c)).toBe(0);
      const onOther = once(c, 'authenticated');
      vi.advanceTimersByTime(0);
      await onOther;
      expect(c.url).toBe(agentWsUrl(other.url));
      expect(other.connections).toBe(1);

      // Both down: it alternates between them, backing off as with one.
      other.goOffline();
      const delays = [await nextDelay(c)];
      for (let i = 0; i < 3; i++) {
        const next = nextDelay(c);
        vi.advanceTimersByTime(delays.at(-1)!);
        delays.push(await next);
      }
      expect(delays).toEqual([0, 1000, 2000, 4000]);
      other.goOnline();
      const back = once(c, 'authenticated');
      vi.advanceTimersByTime(4000);
      await back;
      const [a, b] = [agentWsUrl(cloud.url), agentWsUrl(other.url)];
      expect(tried).toEqual([a, b, a, b, a, b]);
      expect(c.isReady()).toBe(true);
    } finally {
      await connection?.stop();
      connection = undefined;
      await other.close();
    }
  });

  it('gives up on a cloud that never answers the auth request', async () => {
    const mute = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(mute, 'listening');
    connection = new CloudConnection({
      urls: [`ws://127.0.0.1:${(mute.address() as AddressInfo).port}/ws/agent`],
      agentId: 'a1',
      apiKey: 'k',
      agentVersion: 't',
      hostname: 'h',
      maxConcurrentTasks: 1,
      reconciliation: () => ({ activeTaskIds: [], bufferedTaskIds: [] }),
      metrics: () => metrics,
      backoff: new Backoff({ maxMs: 1000 }),
      authTimeoutMs: 3000,
    });
    const opened = once(mute, 'connection');
    connection.start();
    const [socket] = (await opened) as [import('ws').WebSocket];
    const [auth] = await once(socket, 'message');
    expect(String(auth)).toContain('AUTH_REQUEST');
    const scheduled = once(connection, 'reconnect-scheduled');
    vi.advanceTimersByTime(2999);
    expect(connection.state).toBe('authenticating');
    vi.advanceTimersByTime(1);
    await scheduled;
    await connection.stop();
    connection = undefined;
    for (const ws of mute.clients) ws.terminate();
    await new Promise<void>((resolve) => mute.close(() => resolve()));
  });
});
