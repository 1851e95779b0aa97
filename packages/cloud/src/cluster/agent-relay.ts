import { type Clock, type Message, parse, serialize } from '@bematic/protocol';
import type { Logger } from 'pino';
import { z } from 'zod';
import { type BusChannel, CacheBus } from './cache-bus.js';

export const AGENT_RELAY_CHANNEL = 'bematic_agents';
/** NOTIFY payloads must stay under 8000 bytes (with the bus's envelope around the notice). */
const MAX_FRAME = 6800;

const Notice = z.object({
  agentId: z.string().min(1).max(200),
  /** A cloud → agent frame for the instance holding the agent to write. */
  frame: z.string().max(MAX_FRAME).optional(),
  /**
   * The sender began this attempt of the task for the agent and wrote its outbox row, in the transaction
   * that carried this notice: the holder claims the row and writes the TASK_SUBMIT.
   */
  submit: z.object({ taskId: z.string().min(1).max(200), attempt: z.number().int().positive() }).optional(),
});
type Notice = z.infer<typeof Notice>;

/** A NOTIFY for the caller to issue inside its own transaction, so it is delivered only if that commits. */
export interface TransactionalNotice {
  channel: string;
  payload: string;
}

export interface AgentRelayHandlers {
  /** A frame for the agent, from an instance that does not hold its socket. */
  frame(agentId: string, message: Message): void;
  /** Another instance began this attempt for the agent (outbox row written): claim it and send it. */
  submit(agentId: string, taskId: string, attempt: number): void;
  /** The relay was away and is back: hand-overs may have been missed. */
  resumed(): void;
}

/**
 * How instances reach the agents whose sockets another instance holds. The holder is handed attempts begun
 * elsewhere (it claims their outbox rows itself) and writes frames it is handed.
 */
export interface AgentRelay {
  start(handlers: AgentRelayHandlers): Promise<void>;
  /** Hands a frame to whoever holds the agent. False when it could not be handed on. */
  forward(agentId: string, message: Message): Promise<boolean>;
  /**
   * The notice that hands the task's attempt to whoever holds the agent, to be sent in the transaction that
   * begins the attempt. Null: no other instance to tell (one process).
   */
  submitNotice(agentId: string, taskId: string, attempt: number): TransactionalNotice | null;
  close(): Promise<void>;
}

/** One process (SQLite): nobody else holds agents. */
export class LocalAgentRelay implements AgentRelay {
  async start(): Promise<void> {}

  async forward(): Promise<boolean> {
    return false;
  }

  submitNotice(): null {
    return null;
  }

  async close(): Promise<void> {}
}

export type PostgresAgentRelayOptions =
  | {
      /** The instance's bus: the relay is one more channel on its LISTEN session (the bus is started by its owner). */
      bus: CacheBus;
      logger: Logger;
    }
  | {
      /** A bus of the relay's own (started and closed with it), for a gateway used without the rest of the cloud. */
      connectionString: string;
      instanceId: string;
      clock: Clock;
      logger: Logger;
      reconnectMs?: number;
    };

/**
 * The relay on PostgreSQL: channel `bematic_agents` of the instance's bus (its one LISTEN session, with the
 * cache invalidations and the dashboard feed). Every instance hears every notice and acts only for agents
 * whose socket it holds. A notice is not durable; the outbox rows are, and the gateway's slow sweep sends
 * what a lost notice left behind.
 */
export class PostgresAgentRelay implements AgentRelay {
  private readonly bus: CacheBus;
  private readonly ownBus: boolean;
  private readonly channel: BusChannel & { listening: Promise<void> };
  private handlers: AgentRelayHandlers | null = null;

  constructor(private readonly opts: PostgresAgentRelayOptions) {
    if ('bus' in opts) {
      this.bus = opts.bus;
      this.ownBus = false;
    } else {
      this.bus = new CacheBus({
        connectionString: opts.connectionString,
        instanceId: opts.instanceId,
        clock: opts.clock,
        logger: opts.logger,
        ...(opts.reconnectMs !== undefined && { reconnectMs: opts.reconnectMs }),
      });
      this.ownBus = true;
    }
    this.channel = this.bus.channel(AGENT_RELAY_CHANNEL, {
      receive: (body) => this.receive(body),
      resumed: () => this.handlers?.resumed(),
    });
  }

  async start(handlers: AgentRelayHandlers): Promise<void> {
    this.handlers = handlers;
    if (this.ownBus) await this.bus.start({ drop: () => {}, dropAll: () => {} });
    await this.channel.listening;
  }

  forward(agentId: string, message: Message): Promise<boolean> {
    let frame: string;
    try {
      frame = serialize(message);
    } catch (err) {
      this.opts.logger.error({ err, agentId, type: message.type }, 'refused to relay an invalid frame');
      return Promise.resolve(false);
    }
    if (frame.length > MAX_FRAME) {
      this.opts.logger.warn({ agentId, type: message.type, bytes: frame.length }, 'frame too large to relay');
      return Promise.resolve(false);
    }
    return this.channel.publish({ agentId, frame } satisfies Notice);
  }

  submitNotice(agentId: string, taskId: string, attempt: number): TransactionalNotice | null {
    const payload = this.channel.encode({ agentId, submit: { taskId, attempt } } satisfies Notice);
    return payload === null ? null : { channel: this.channel.name, payload };
  }

  async close(): Promise<void> {
    this.handlers = null;
    if (this.ownBus) await this.bus.close();
  }

  private receive(body: unknown): void {
    const notice = Notice.safeParse(body);
    if (!notice.success) {
      this.opts.logger.warn(
        { issues: notice.error.issues.slice(0, 3) },
        'unreadable agent relay notice ignored',
      );
      return;
    }
    const { agentId, frame, submit } = notice.data;
    if (submit !== undefined) {
      this.handlers?.submit(agentId, submit.taskId, submit.attempt);
      return;
    }
    if (frame === undefined) {
      this.opts.logger.warn({ agentId }, 'agent relay notice without a frame or a task ignored');
      return;
    }
    const parsed = parse(frame);
    if (!parsed.ok) {
      this.opts.logger.warn({ error: parsed.error, agentId }, 'relayed frame refused');
      return;
    }
    this.handlers?.frame(agentId, parsed.message);
  }
}
