import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '@bematic/protocol';
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Invalidation } from '../cache/cache.js';

const CHANNEL = 'bematic_cache';
/** NOTIFY payloads must stay under 8000 bytes; a batch beyond this is sent as "drop everything". */
const MAX_PAYLOAD = 7000;

const Message = z.object({
  /** current_schema of the sender: services in separate schemas of one database ignore each other. */
  ns: z.string(),
  from: z.string(),
  targets: z.array(z.union([z.string(), z.object({ prefix: z.string() })])).max(1000),
  all: z.boolean().optional(),
});
type Message = z.infer<typeof Message>;

/** A message on one of the further channels: same namespace and sender rules, the body is the channel's own. */
const Envelope = z.object({ ns: z.string(), from: z.string(), body: z.unknown() });

/** A further channel on the bus's session (e.g. the dashboard feed, the agent relay). */
export interface BusChannel {
  readonly name: string;
  /** Sent at once to the other instances; a body that would not fit one NOTIFY is dropped with a warning. */
  send(body: unknown): void;
  /** As send, resolving true once PostgreSQL took the NOTIFY, false when it could not be sent. */
  publish(body: unknown): Promise<boolean>;
  /**
   * The NOTIFY payload for `body`, for a caller that issues `pg_notify(name, payload)` inside its own
   * transaction (delivered on commit, with the rows it wrote); null when it would not fit.
   */
  encode(body: unknown): string | null;
}

interface ChannelHandlers {
  /** A body from another instance, still to be validated by the channel's owner. */
  receive(body: unknown): void;
  /** After the session was lost and is back: messages may have been missed meanwhile. */
  resumed?(): void;
}

export interface CacheBusOptions {
  connectionString: string;
  instanceId: string;
  clock: Clock;
  logger: Logger;
  /** How long to wait before listening again after the session is lost. */
  reconnectMs?: number;
}

/** What the bus reports about itself: for metrics, and for anyone who must wait on the session. */
export interface CacheBusEvents {
  /** A message from another instance was applied (cache drops) or handed to its channel. */
  received: [channel: string];
  /** The listening session was lost; a reconnect is scheduled. */
  lost: [];
}

export interface CacheBusHandlers {
  drop(target: Invalidation): void;
  /** Called after the bus reconnected: invalidations may have been missed meanwhile. */
  dropAll(): void;
}

/**
 * Cache invalidations shared between cloud instances with LISTEN/NOTIFY: what
 * one instance drops, the others drop too. Drops of one tick go out as one
 * NOTIFY. When the listening session is lost the instance flushes its cache on
 * reconnect, since it may have missed some.
 *
 * The bus is the instance's one LISTEN session: further channels (the dashboard
 * feed, the agent relay) ride on it and share its reconnect. The listening
 * client only ever runs LISTEN; NOTIFYs go out on a separate one-connection
 * pool, in the order they were asked for.
 */
export class CacheBus extends EventEmitter<CacheBusEvents> {
  private listener: pg.Client | null = null;
  private sender: pg.Pool | null = null;
  /** LISTENs issued on the listening client, one at a time. */
  private listening: Promise<void> = Promise.resolve();
  private namespace = '';
  private pending: Invalidation[] = [];
  private flushing = false;
  private retry: TimerHandle | null = null;
  private closed = false;
  private handlers: CacheBusHandlers | null = null;
  private readonly channels = new Map<string, ChannelHandlers>();

  constructor(private readonly opts: CacheBusOptions) {
    super();
  }

  async start(handlers: CacheBusHandlers): Promise<void> {
    this.handlers = handlers;
    this.sender = new pg.Pool({
      connectionString: this.opts.connectionString,
      max: 1,
      application_name: `bematic-notify:${this.opts.instanceId}`.slice(0, 63),
      keepAlive: true,
    });
    // A lost sending connection is replaced on the next NOTIFY; its error must not end the process.
    this.sender.on('error', (err) => this.opts.logger.warn({ err }, 'bus sending connection lost'));
    await this.listen();
  }

  /**
   * Another LISTEN/NOTIFY channel on the same session, so instances share one
   * listening connection whatever they tell each other. `listening` settles once
   * the channel is listened to (at once before start(), which listens to all).
   */
  channel(name: string, handlers: ChannelHandlers): BusChannel & { listening: Promise<void> } {
    if (!/^[a-z_]+$/.test(name) || name === CHANNEL || this.channels.has(name))
      throw new Error(`bad bus channel name "${name}"`);
    this.channels.set(name, handlers);
    const client = this.listener;
    const listening = client ? this.onListener(client, `listen ${name}`) : Promise.resolve();
    return {
      name,
      send: (body) => void this.sendOn(name, body),
      publish: (body) => this.sendOn(name, body),
      encode: (body) => this.encode(name, body),
      listening,
    };
  }

  /** Queue a drop for the other instances (sent on the next tick). */
  publish(target: Invalidation): void {
    if (this.closed) return;
    this.pending.push(target);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => void this.flush());
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== null) this.opts.clock.clearTimeout(this.retry);
    const client = this.listener;
    this.listener = null;
    const sender = this.sender;
    this.sender = null;
    await client?.end().catch(() => undefined);
    await sender?.end().catch(() => undefined);
  }

  /** One NOTIFY on the sending pool (never on the listening client, which may be busy with a LISTEN). */
  private async notify(channel: string, payload: string): Promise<boolean> {
    const sender = this.sender;
    if (!sender || this.closed) return false;
    try {
      await sender.query('select pg_notify($1, $2)', [channel, payload]);
      return true;
    } catch (err) {
      this.opts.logger.warn({ err, channel }, 'bus broadcast failed');
      return false;
    }
  }

  /** Runs one statement on the listening client after those before it. */
  private onListener(client: pg.Client, statement: string): Promise<void> {
    const run = this.listening.then(() => client.query(statement)).then(() => undefined);
    this.listening = run.catch(() => undefined);
    return run;
  }

  private encode(channel: string, body: unknown): string | null {
    const payload = JSON.stringify({ ns: this.namespace, from: this.opts.instanceId, body });
    if (payload.length > MAX_PAYLOAD) {
      this.opts.logger.warn({ channel, bytes: payload.length }, 'bus message too large for NOTIFY, dropped');
      return null;
    }
    return payload;
  }

  private async flush(): Promise<void> {
    const targets = this.pending;
    this.pending = [];
    this.flushing = false;
    if (!this.listener || targets.length === 0) return;
    const unique = [
      ...new Map(targets.map((t) => [typeof t === 'string' ? `k:${t}` : `p:${t.prefix}`, t])).values(),
    ];
    let message: Message = { ns: this.namespace, from: this.opts.instanceId, targets: unique };
    if (JSON.stringify(message).length > MAX_PAYLOAD) message = { ...message, targets: [], all: true };
    await this.notify(CHANNEL, JSON.stringify(message));
  }

  private async sendOn(channel: string, body: unknown): Promise<boolean> {
    if (!this.listener || this.closed) return false;
    const payload = this.encode(channel, body);
    return payload === null ? false : this.notify(channel, payload);
  }

  private receiveOn(channel: string, payload: string | undefined): void {
    const handlers = this.channels.get(channel);
    if (!handlers) return;
    let parsed: z.infer<typeof Envelope>;
    try {
      parsed = Envelope.parse(JSON.parse(payload ?? ''));
    } catch (err) {
      this.opts.logger.warn({ err, channel }, 'unreadable bus message ignored');
      return;
    }
    if (parsed.ns !== this.namespace || parsed.from === this.opts.instanceId) return;
    handlers.receive(parsed.body);
    this.emit('received', channel);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.opts.connectionString,
      application_name: `bematic-cache:${this.opts.instanceId}`.slice(0, 63),
      keepAlive: true,
    });
    client.on('error', (err) => {
      this.opts.logger.warn({ err }, 'cache invalidation session lost');
      if (this.listener === client) this.lost();
    });
    client.on('notification', (n) => {
      if (n.channel === CHANNEL) this.apply(n.payload);
      else this.receiveOn(n.channel, n.payload);
    });
    await client.connect();
    const { rows } = await client.query<{ schema: string | null }>('select current_schema() as schema');
    this.namespace = rows[0]?.schema ?? '';
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listening = Promise.resolve();
    this.listener = client;
    // Every channel known now; one registered later queues its own LISTEN behind this one.
    await this.onListener(client, `listen ${[CHANNEL, ...this.channels.keys()].join('; listen ')}`);
  }

  private apply(payload: string | undefined): void {
    let parsed: Message;
    try {
      parsed = Message.parse(JSON.parse(payload ?? ''));
    } catch (err) {
      this.opts.logger.warn({ err }, 'unreadable cache invalidation ignored');
      return;
    }
    if (parsed.ns !== this.namespace || parsed.from === this.opts.instanceId) return;
    if (parsed.all) this.handlers?.dropAll();
    else for (const t of parsed.targets) this.handlers?.drop(t);
    this.emit('received', CHANNEL);
  }

  private lost(): void {
    const client = this.listener;
    this.listener = null;
    void client?.end().catch(() => undefined);
    if (this.closed) return;
    this.retry = this.opts.clock.setTimeout(() => {
      this.retry = null;
      this.listen()
        .then(() => {
          this.handlers?.dropAll();
          for (const c of this.channels.values()) c.resumed?.();
        })
        .catch((err: unknown) => {
          this.opts.logger.warn({ err }, 'cache invalidation session: reconnect failed');
          if (!this.closed) this.lost();
        });
    }, this.opts.reconnectMs ?? 1000);
    this.emit('lost');
  }
}
