import { AgentStatus, ResourceMetrics } from '@bematic/protocol';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { BusChannel, CacheBus } from '../cluster/cache-bus.js';
import type { Task, TaskRepository } from '../db/repositories/types.js';
import { TASK_ROW_EVENTS, type TaskEvents } from '../tasks/task-events.js';

/** The NOTIFY channel the dashboard feed travels on, beside the cache's. */
export const FEED_CHANNEL = 'bematic_feed';
/** Progress text is cut here so a message stays far below NOTIFY's 8000 bytes. */
const MAX_PROGRESS_CHARS = 2000;

const id = z.string().min(1).max(200);
const AgentPayload = z.union([
  z.object({ event: z.literal('agent.online'), agentId: id }),
  z.object({
    event: z.literal('agent.offline'),
    agentId: id,
    reason: z.string().max(500),
    reconnectEtaMs: z.number().nullable(),
  }),
  z.object({ event: z.literal('agent.status'), agentId: id, status: AgentStatus }),
  z.object({ event: z.literal('agent.heartbeat'), agentId: id, rttMs: z.number(), metrics: ResourceMetrics }),
  z.object({
    event: z.literal('circuit.changed'),
    agentId: id,
    from: z.enum(['closed', 'half-open', 'open']),
    to: z.enum(['closed', 'half-open', 'open']),
  }),
]);
type AgentPayload = z.infer<typeof AgentPayload>;

/** What crosses between instances: ids and small facts, never whole rows (the receiver reads the row). */
const FeedMessage = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('task'),
    event: z.enum([...TASK_ROW_EVENTS, 'task.progress']),
    taskId: id,
    progress: z.string().max(MAX_PROGRESS_CHARS).optional(),
  }),
  z.object({ kind: z.literal('agent'), payload: AgentPayload }),
  z.object({ kind: z.literal('step'), taskId: id }),
]);
type FeedMessage = z.infer<typeof FeedMessage>;

/** An event of another instance, as this instance's dashboard stream shows it. */
export type FeedEvent =
  | { kind: 'task'; event: string; task: Task; progress?: string }
  | { kind: 'agent'; event: string; payload: { agentId: string } }
  | { kind: 'step'; taskId: string }
  /** The feed's session was lost for a while: clients reload what they show. */
  | { kind: 'resync' };

/** Transcript writes as they are stored; each change names its task. */
export interface StepFeed {
  subscribe(fn: (change: { taskId: string }) => void): () => void;
}

/** What the other instances' tasks, agents and transcripts did; `watching`: whether anyone listens now. */
export interface RemoteFeed {
  subscribe(fn: (event: FeedEvent) => void, watching?: () => boolean): () => void;
}

/**
 * The dashboard's live feed across instances: each instance tells the others
 * (LISTEN/NOTIFY, on the cache bus's session) which task changed, what its
 * agents did and which transcripts grew, and hands what the others told it to
 * its own event stream, reading task rows from the database. Events of one
 * task keep their order.
 */
export class ClusterFeed {
  private readonly channel: BusChannel;
  private readonly listeners = new Map<(event: FeedEvent) => void, () => boolean>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: {
      bus: CacheBus;
      tasks: Pick<TaskRepository, 'findById'>;
      logger: Logger;
    },
  ) {
    this.channel = opts.bus.channel(FEED_CHANNEL, {
      receive: (body) => this.receive(body),
      resumed: () => this.emit({ kind: 'resync' }),
    });
  }

  /** Tells the other instances about this one's events. */
  attach(events: TaskEvents, steps?: StepFeed): () => void {
    const send = (message: FeedMessage) => {
      const checked = FeedMessage.safeParse(message);
      if (checked.success) this.channel.send(checked.data);
      else
        this.opts.logger.warn(
          { issues: checked.error.issues.slice(0, 3) },
          'dashboard feed message not sent',
        );
    };
    const agent = (payload: AgentPayload) => send({ kind: 'agent', payload });
    const offs = [
      ...TASK_ROW_EVENTS.map((event) =>
        events.on(event, ({ task }) => send({ kind: 'task', event, taskId: task.id })),
      ),
      events.on('task.progress', ({ task, progress }) =>
        send({
          kind: 'task',
          event: 'task.progress',
          taskId: task.id,
          progress: progress.message.slice(0, MAX_PROGRESS_CHARS),
        }),
      ),
      events.on('agent.online', (p) => agent({ event: 'agent.online', ...p })),
      events.on('agent.offline', (p) => agent({ event: 'agent.offline', ...p })),
      events.on('agent.status', (p) => agent({ event: 'agent.status', ...p })),
      events.on('agent.heartbeat', (p) => agent({ event: 'agent.heartbeat', ...p })),
      events.on('circuit.changed', (p) => agent({ event: 'circuit.changed', ...p })),
      ...(steps ? [steps.subscribe(({ taskId }) => send({ kind: 'step', taskId }))] : []),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  /** `watching` says whether the listener has anyone to show events to: rows are read only then. */
  subscribe(listener: (event: FeedEvent) => void, watching: () => boolean = () => true): () => void {
    this.listeners.set(listener, watching);
    return () => this.listeners.delete(listener);
  }

  private receive(body: unknown): void {
    const parsed = FeedMessage.safeParse(body);
    if (!parsed.success) {
      this.opts.logger.warn(
        { issues: parsed.error.issues.slice(0, 3) },
        'unreadable dashboard feed message ignored',
      );
      return;
    }
    const message = parsed.data;
    if (message.kind === 'agent') {
      const { event, ...payload } = message.payload;
      this.emit({ kind: 'agent', event, payload });
    } else if (message.kind === 'step') {
      this.emit(message);
    } else {
      // One read at a time, so a task's events reach the stream in the order they were sent.
      this.chain = this.chain.then(async () => {
        if (![...this.listeners.values()].some((watching) => watching())) return;
        try {
          const task = await this.opts.tasks.findById(message.taskId);
          if (!task) return;
          this.emit({
            kind: 'task',
            event: message.event,
            task,
            ...(message.progress !== undefined && { progress: message.progress }),
          });
        } catch (err) {
          this.opts.logger.warn({ err, taskId: message.taskId }, 'dashboard feed: task read failed');
        }
      });
    }
  }

  private emit(event: FeedEvent): void {
    for (const listener of this.listeners.keys()) {
      try {
        listener(event);
      } catch (err) {
        this.opts.logger.warn({ err }, 'dashboard feed listener failed');
      }
    }
  }
}
