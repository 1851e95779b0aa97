import type { ServerResponse } from 'node:http';
import { backgroundClock, type Clock, type TimerHandle } from '@bematic/protocol';
import { type ConsoleChange, ConsoleChatSurface } from '../console/console-surface.js';
import type { Task } from '../db/repositories/types.js';
import { TASK_ROW_EVENTS, type TaskEvents } from '../tasks/task-events.js';
import type { FeedEvent, RemoteFeed, StepFeed } from './cluster-feed.js';
import { summarize } from './dashboard-reads.js';

/**
 * A client the socket will not take more from (write() returned false) is
 * "behind": instead of queueing frames for it, the stream keeps the latest
 * state per task and per agent, and sends that when the socket drains. Past
 * this many distinct pending items it keeps nothing but a `resync` (the
 * client reloads what it shows), so a slow client costs bounded memory and is
 * never cut off.
 */
const MAX_COALESCED = 500;

interface Client {
  res: ServerResponse;
  behind: boolean;
  /** Latest frame per key (`task:<id>`, `agent:<id>`), in first-seen order. */
  pending: Map<string, string>;
  /** Frames that cannot be coalesced were dropped: the client must reload. */
  resync: boolean;
}

/**
 * Server-Sent Events for the dashboard: console thread changes (`console`),
 * task lifecycle updates (`task`), transcript steps stored (`step`), agent
 * changes (`agent`), and `resync` when a slow client missed changes that
 * cannot be replayed as latest state.
 */
export class EventStream {
  private readonly clients = new Set<Client>();
  private readonly offs: Array<() => void> = [];
  private readonly heartbeat: TimerHandle;
  private readonly clock: Clock;

  constructor(opts: {
    surface: ConsoleChatSurface;
    viewerId: string;
    events?: TaskEvents;
    /** Transcript steps as they are stored (`step` events carry the task id). */
    steps?: StepFeed;
    /** What the other instances on the database did (their tasks, agents and transcripts). */
    remote?: RemoteFeed;
    heartbeatMs?: number;
    /** Keepalive timers (default: unref'd, so the stream never keeps the process alive). */
    clock?: Clock;
  }) {
    if (opts.steps) this.offs.push(opts.steps.subscribe(({ taskId }) => this.step(taskId)));
    if (opts.remote)
      this.offs.push(
        opts.remote.subscribe(
          (event) => this.remote(event),
          () => this.clients.size > 0,
        ),
      );
    this.offs.push(
      opts.surface.subscribe((change: ConsoleChange) => {
        if (ConsoleChatSurface.visibleTo(change, opts.viewerId)) this.send('console', change, null);
      }),
    );
    const ev = opts.events;
    if (ev) {
      for (const name of TASK_ROW_EVENTS) this.offs.push(ev.on(name, ({ task }) => this.task(name, task)));
      const agent = (event: string) => (p: { agentId: string }) => this.agent(event, p);
      this.offs.push(
        ev.on('task.progress', ({ task, progress }) => this.task('task.progress', task, progress.message)),
        ev.on('agent.online', agent('agent.online')),
        ev.on('agent.offline', agent('agent.offline')),
        ev.on('agent.status', agent('agent.status')),
        ev.on('agent.heartbeat', agent('agent.heartbeat')),
        ev.on('circuit.changed', agent('circuit.changed')),
      );
    }
    this.clock = opts.clock ?? backgroundClock;
    this.heartbeat = this.clock.setInterval(() => {
      for (const c of this.clients) if (!c.behind) this.write(c, ': keepalive\n\n');
    }, opts.heartbeatMs ?? 15_000);
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
    const client: Client = { res, behind: false, pending: new Map(), resync: false };
    res.write('retry: 3000\n\n');
    this.write(client, `event: hello\ndata: ${JSON.stringify({ clients: this.clients.size + 1 })}\n\n`);
    this.clients.add(client);
    res.on('drain', () => this.flush(client));
    res.on('close', () => this.clients.delete(client));
  }

  private task(event: string, task: Task, progress?: string): void {
    this.send(
      'task',
      { event, task: summarize(task), ...(progress !== undefined && { progress }) },
      `task:${task.id}`,
    );
  }

  private agent(event: string, payload: { agentId: string }): void {
    this.send('agent', { event, ...payload }, `agent:${payload.agentId}:${event}`);
  }

  private step(taskId: string): void {
    this.send('step', { taskId }, `step:${taskId}`);
  }

  private remote(event: FeedEvent): void {
    if (event.kind === 'task') this.task(event.event, event.task, event.progress);
    else if (event.kind === 'agent') this.agent(event.event, event.payload);
    else if (event.kind === 'step') this.step(event.taskId);
    else this.send('resync', {}, null);
  }

  /** `key` names what a later frame supersedes; null means the frame cannot be coalesced. */
  private send(event: string, data: unknown, key: string | null): void {
    if (this.clients.size === 0) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.clients) {
      if (!c.behind) {
        this.write(c, frame);
      } else if (c.resync) {
        // Everything will be reloaded anyway.
      } else if (key === null || (!c.pending.has(key) && c.pending.size >= MAX_COALESCED)) {
        c.resync = true;
        c.pending.clear();
      } else {
        c.pending.delete(key);
        c.pending.set(key, frame);
      }
    }
  }

  /** End every stream (server shutdown) and stop listening. */
  close(): void {
    this.clock.clearInterval(this.heartbeat);
    for (const off of this.offs) off();
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private write(c: Client, frame: string): void {
    if (!c.res.write(frame)) c.behind = true;
  }

  /** The socket took what it had: send the coalesced state, until it pushes back again. */
  private flush(c: Client): void {
    c.behind = false;
    if (c.resync) {
      c.resync = false;
      c.pending.clear();
      this.write(c, 'event: resync\ndata: {}\n\n');
      return;
    }
    for (const [key, frame] of c.pending) {
      c.pending.delete(key);
      this.write(c, frame);
      if (c.behind) return;
    }
  }
}
