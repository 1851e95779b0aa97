import { type Clock, type Message, parse, serialize, type TimerHandle } from '@bematic/protocol';
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';

const CHANNEL = 'bematic_agents';
/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7000;

const Notice = z.object({
  /** current_schema of the sender: services in separate schemas of one database ignore each other. */
  ns: z.string(),
  from: z.string(),
  agentId: z.string().min(1).max(200),
  /** A cloud → agent frame for the instance holding the agent to write; absent: a wake for its outbox. */
  frame: z.string().max(MAX_PAYLOAD).optional(),
});
type Notice = z.infer<typeof Notice>;

export interface AgentRelayHandlers {
  /** The agent's outbox has rows: the instance holding its socket sends them. */
  wake(agentId: string): void;
  /** A frame for the agent, from an instance that does not hold its socket. */
  frame(agentId: string, message: Message): void;
  /** The relay was away and is back: wakes may have been missed. */
  resumed(): void;
}

/**
 * How instances reach the agents whose sockets another instance holds. The holder is woken for its outbox
 * rows (which it claims itself) and writes frames it is handed to the agent.
 */
export interface AgentRelay {
  start(handlers: AgentRelayHandlers): Promise<void>;
  /** Tells whoever holds the agent that its outbox has rows (fire and forget; the outbox is the record). */
  wake(agentId: string): void;
  /** Hands a frame to whoever holds the agent. False when it could not be handed on. */
  forward(agentId: string, message: Message): Promise<boolean>;
  close(): Promise<void>;
}

/** One process (SQLite): nobody else holds agents, so a wake comes straight back in this process. */
export class LocalAgentRelay implements AgentRelay {
  private handlers: AgentRelayHandlers | null = null;

  async start(handlers: AgentRelayHandlers): Promise<void> {
    this.handlers = handlers;
  }

  wake(agentId: string): void {
    this.handlers?.wake(agentId);
  }

  async forward(): Promise<boolean> {
    return false;
  }

  async close(): Promise<void> {
    this.handlers = null;
  }
}

export interface PostgresAgentRelayOptions {
  connectionString: string;
  instanceId: string;
  clock: Clock;
  logger: Logger;
  /** How long to wait before listening again after the session is lost. */
  reconnectMs?: number;
}

/**
 * The relay on PostgreSQL: LISTEN/NOTIFY on channel `bematic_agents`, on a session of its own. Every
 * instance hears every notice and acts only for agents whose socket it holds. A notice is not durable; the
 * outbox rows are, and the gateway's slow sweep sends what a lost wake left behind.
 */
export class PostgresAgentRelay implements AgentRelay {
  private session: pg.Client | null = null;
  private namespace = '';
  private retry: TimerHandle | null = null;
  private closed = false;
  private handlers: AgentRelayHandlers | null = null;

  constructor(private readonly opts: PostgresAgentRelayOptions) {}

  async start(handlers: AgentRelayHandlers): Promise<void> {
    this.handlers = handlers;
    await this.listen();
  }

  wake(agentId: string): void {
    void this.notify({ ns: this.namespace, from: this.opts.instanceId, agentId });
  }

  forward(agentId: string, message: Message): Promise<boolean> {
    let frame: string;
    try {
      frame = serialize(message);
    } catch (err) {
      this.opts.logger.error({ err, agentId, type: message.type }, 'refused to relay an invalid frame');
      return Promise.resolve(false);
    }
    if (frame.length > MAX_PAYLOAD) {
      this.opts.logger.warn({ agentId, type: message.type, bytes: frame.length }, 'frame too large to relay');
      return Promise.resolve(false);
    }
    return this.notify({ ns: this.namespace, from: this.opts.instanceId, agentId, frame });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== null) this.opts.clock.clearTimeout(this.retry);
    const client = this.session;
    this.session = null;
    await client?.end().catch(() => undefined);
  }

  private async notify(notice: Notice): Promise<boolean> {
    const client = this.session;
    if (!client) return false;
    try {
      await client.query('select pg_notify($1, $2)', [CHANNEL, JSON.stringify(notice)]);
      return true;
    } catch (err) {
      this.opts.logger.warn({ err, agentId: notice.agentId }, 'agent relay notice not sent');
      return false;
    }
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.opts.connectionString,
      application_name: `bematic-relay:${this.opts.instanceId}`.slice(0, 63),
      keepAlive: true,
    });
    client.on('error', (err) => {
      this.opts.logger.warn({ err }, 'agent relay session lost');
      if (this.session === client) this.lost();
    });
    client.on('notification', (n) => {
      if (n.channel === CHANNEL) this.receive(n.payload);
    });
    await client.connect();
    const { rows } = await client.query<{ schema: string | null }>('select current_schema() as schema');
    this.namespace = rows[0]?.schema ?? '';
    await client.query(`listen ${CHANNEL}`);
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.session = client;
  }

  private receive(payload: string | undefined): void {
    let notice: Notice;
    try {
      notice = Notice.parse(JSON.parse(payload ?? ''));
    } catch (err) {
      this.opts.logger.warn({ err }, 'unreadable agent relay notice ignored');
      return;
    }
    if (notice.ns !== this.namespace || notice.from === this.opts.instanceId) return;
    if (notice.frame === undefined) {
      this.handlers?.wake(notice.agentId);
      return;
    }
    const parsed = parse(notice.frame);
    if (!parsed.ok) {
      this.opts.logger.warn({ error: parsed.error, agentId: notice.agentId }, 'relayed frame refused');
      return;
    }
    this.handlers?.frame(notice.agentId, parsed.message);
  }

  private lost(): void {
    const client = this.session;
    this.session = null;
    void client?.end().catch(() => undefined);
    if (this.closed) return;
    this.retry = this.opts.clock.setTimeout(() => {
      this.retry = null;
      this.listen()
        .then(() => this.handlers?.resumed())
        .catch((err: unknown) => {
          this.opts.logger.warn({ err }, 'agent relay session: reconnect failed');
          if (!this.closed) this.lost();
        });
    }, this.opts.reconnectMs ?? 1000);
  }
}
