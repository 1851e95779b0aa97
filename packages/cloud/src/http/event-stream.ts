import type { ServerResponse } from 'node:http';
import { type ConsoleChange, ConsoleChatSurface } from '../console/console-surface.js';
import { TASK_ROW_EVENTS, type TaskEvents } from '../tasks/task-events.js';
import { summarize } from './dashboard-reads.js';

/** A client that falls this far behind is dropped rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * Server-Sent Events for the dashboard: console thread changes (`console`),
 * task lifecycle updates (`task`), transcript steps stored (`step`) and agent
 * changes (`agent`).
 */
export class EventStream {
  private readonly clients = new Set<ServerResponse>();
  private readonly offs: Array<() => void> = [];
  private readonly heartbeat: NodeJS.Timeout;

  constructor(opts: {
    surface: ConsoleChatSurface;
    viewerId: string;
    events?: TaskEvents;
    /** Transcript steps as they are stored (`step` events carry the task id). */
    steps?: { subscribe(fn: (change: { taskId: string }) => void): () => void };
    heartbeatMs?: number;
  }) {
    if (opts.steps) this.offs.push(opts.steps.subscribe((change) => this.broadcast('step', change)));
    this.offs.push(
      opts.surface.subscribe((change: ConsoleChange) => {
        if (ConsoleChatSurface.visibleTo(change, opts.viewerId)) this.broadcast('console', change);
      }),
    );
    const ev = opts.events;
    if (ev) {
      for (const name of TASK_ROW_EVENTS) {
        this.offs.push(
          ev.on(name, ({ task }) => this.broadcast('task', { event: name, task: summarize(task) })),
        );
      }
      this.offs.push(
        ev.on('task.progress', ({ task, progress }) =>
          this.broadcast('task', {
            event: 'task.progress',
            task: summarize(task),
            progress: progress.message,
          }),
        ),
        ev.on('agent.online', (p) => this.broadcast('agent', { event: 'agent.online', ...p })),
        ev.on('agent.offline', (p) => this.broadcast('agent', { event: 'agent.offline', ...p })),
        ev.on('agent.status', (p) => this.broadcast('agent', { event: 'agent.status', ...p })),
        ev.on('agent.heartbeat', (p) => this.broadcast('agent', { event: 'agent.heartbeat', ...p })),
        ev.on('circuit.changed', (p) => this.broadcast('agent', { event: 'circuit.changed', ...p })),
      );
    }
    this.heartbeat = setInterval(() => this.write(': keepalive\n\n'), opts.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  open(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    res.write(`event: hello\ndata: ${JSON.stringify({ clients: this.clients.size + 1 })}\n\n`);
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
  }

  broadcast(event: string, data: unknown): void {
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** End every stream (server shutdown) and stop listening. */
  close(): void {
    clearInterval(this.heartbeat);
    for (const off of this.offs) off();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private write(frame: string): void {
    for (const res of this.clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        res.destroy();
        this.clients.delete(res);
        continue;
      }
      res.write(frame);
    }
  }
}
