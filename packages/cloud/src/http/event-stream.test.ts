import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newTaskInput, openTestDb, type TestDb } from '../../test/support/database.js';
import { ConsoleChatSurface } from '../console/console-surface.js';
import type { Task } from '../db/repositories/types.js';
import { TaskEvents } from '../tasks/task-events.js';
import { EventStream } from './event-stream.js';

interface Frame {
  event: string;
  data: string;
}

/**
 * A real reader over a raw socket that reads nothing until told to, the way a
 * browser tab in the background or a client on a slow link behaves.
 */
class SlowReader {
  private buffer = '';
  readonly frames: Frame[] = [];
  private waiters: Array<{ until: (f: Frame[]) => boolean; resolve: () => void }> = [];
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end = this.buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined) this.frames.push({ event, data: data ?? '' });
        end = this.buffer.indexOf('\n\n');
      }
      this.check();
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static async open(port: number): Promise<SlowReader> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
    const reader = new SlowReader(socket);
    await reader.waitFor((f) => f.some((x) => x.event === 'hello'));
    return reader;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  waitFor(until: (f: Frame[]) => boolean): Promise<void> {
    if (until(this.frames)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ until, resolve }));
  }

  close(): void {
    this.socket.destroy();
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.until(this.frames)) return true;
      w.resolve();
      return false;
    });
  }
}

describe('event stream with a slow reader', () => {
  let t: TestDb;
  let events: TaskEvents;
  let surface: ConsoleChatSurface;
  let stream: EventStream;
  let server: Server;
  let port: number;
  let tasks: Task[];

  beforeEach(async () => {
    t = await openTestDb(Date.now());
    events = new TaskEvents();
    surface = new ConsoleChatSurface();
    stream = new EventStream({ surface, viewerId: 'console-user', events });
    server = createServer((_req, res) => stream.open(res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    tasks = [];
    for (let i = 0; i < 50; i++) tasks.push(await t.repos.tasks.create(newTaskInput()));
  });
  afterEach(async () => {
    stream.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await t.close();
  });

  /** Far more than loopback socket buffers hold, so the stream has to hold back. */
  const BURST = 40_000;
  const burst = () => {
    for (let i = 0; i < BURST; i++) {
      const task = tasks[i % tasks.length] as Task;
      events.emit('task.progress', {
        task,
        progress: { taskId: task.id, attempt: 1, kind: 'status', message: `step ${i}` },
      });
    }
  };
  const lastProgress = (frames: Frame[]) => {
    const last = new Map<string, string>();
    for (const f of frames) {
      if (f.event !== 'task') continue;
      const d = JSON.parse(f.data) as { task: { id: string }; progress?: string };
      if (d.progress) last.set(d.task.id, d.progress);
    }
    return last;
  };
  const finalStep = (taskIndex: number) => `step ${BURST - tasks.length + taskIndex}`;

  it('sends a paused client the latest state of every task once it reads again, and keeps it connected', async () => {
    const reader = await SlowReader.open(port);
    reader.pause();
    burst();
    reader.resume();
    await reader.waitFor((f) => tasks.every((task, i) => lastProgress(f).get(task.id) === finalStep(i)));
    const received = reader.frames.filter((f) => f.event === 'task').length;
    // It really fell behind (otherwise this test proves nothing), and nothing it was owed is missing.
    expect(received).toBeLessThan(BURST);
    expect(reader.frames.some((f) => f.event === 'resync')).toBe(false);

    events.emit('task.created', { task: tasks[0] as Task });
    await reader.waitFor(
      (f) => f.at(-1)?.event === 'task' && f.at(-1)?.data.includes('"task.created"') === true,
    );
    expect(reader.closed).toBe(false);
    reader.close();
  });

  it('tells a paused client to resync when it missed changes that cannot be coalesced', async () => {
    const reader = await SlowReader.open(port);
    reader.pause();
    burst();
    await surface.post('console:local', { text: 'a message posted while the reader was behind' });
    reader.resume();
    await reader.waitFor((f) => f.some((x) => x.event === 'resync'));
    expect(reader.frames.some((f) => f.event === 'console')).toBe(false);

    events.emit('task.created', { task: tasks[1] as Task });
    await reader.waitFor((f) => f.at(-1)?.data.includes('"task.created"') === true);
    expect(reader.closed).toBe(false);
    reader.close();
  });
});
