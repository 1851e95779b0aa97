import type { Clock, TimerHandle } from '@bematic/protocol';
import pg from 'pg';
import type { Logger } from 'pino';

/** Whether this instance runs the jobs that must run once per service (retention, queue expiry, reconciliation). */
export interface LeaderGate {
  readonly isLeader: boolean;
  /** `listener(true)` when this instance becomes the leader, `listener(false)` when it stops being it. */
  onChange(listener: (leader: boolean) => void): () => void;
}

export interface LeaderJob {
  start(): void;
  stop(): void | Promise<void>;
}

/** Runs `job` exactly while this instance leads. Returns a detach that also stops it. */
export function whenLeader(gate: LeaderGate, job: LeaderJob): () => void {
  let running = false;
  const apply = (leader: boolean) => {
    if (leader === running) return;
    running = leader;
    if (leader) job.start();
    else void job.stop();
  };
  const off = gate.onChange(apply);
  apply(gate.isLeader);
  return () => {
    off();
    apply(false);
  };
}

/** SQLite: one process, which always leads. */
export const ALWAYS_LEADER: LeaderGate = { isLeader: true, onChange: () => () => undefined };

export class InstanceIdInUseError extends Error {
  readonly code = 'INSTANCE_ID_IN_USE';
  constructor(readonly instanceId: string) {
    super(
      `Another bematic cloud with instance id "${instanceId}" is connected to this database; ` +
        'give each instance its own --instance-id (or BEMATIC_INSTANCE_ID).',
    );
    this.name = 'InstanceIdInUseError';
  }
}

/** First half of the advisory lock key: "BMLD". The second half tells schemas sharing one database apart. */
const LOCK_CLASS = 0x424d4c44;
const APP_PREFIX = 'bematic:';

export interface PostgresLeaderElectionOptions {
  connectionString: string;
  instanceId: string;
  leaseMs: number;
  clock: Clock;
  logger: Logger;
}

/**
 * Leader election on PostgreSQL: every instance keeps one session of its own,
 * named `bematic:<schema>:<instance id>` (application_name; the schema is the
 * session's current_schema, so services in separate schemas of one database
 * stay apart), and tries
 * `pg_try_advisory_lock` on it every lease. The session holding the lock leads;
 * PostgreSQL releases it the moment that session ends, kill -9 of its process
 * included, and another instance takes it at its next try. The same sessions
 * tell who leads (pg_locks) and which instances are alive (pg_stat_activity),
 * so there is no heartbeat table to go stale.
 */
export class PostgresLeaderElection implements LeaderGate {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private leading = false;
  private timer: TimerHandle | null = null;
  private ticking: Promise<void> | null = null;
  private closed = false;
  private readonly listeners = new Set<(leader: boolean) => void>();
  /** Set by the first connection, from its current_schema. */
  private namespace = APP_PREFIX;
  private applicationName = APP_PREFIX;
  private lockKey = 0;

  constructor(private readonly opts: PostgresLeaderElectionOptions) {}

  get isLeader(): boolean {
    return this.leading;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Connects, refuses an instance id already in use, makes the first attempt and schedules the next ones. */
  async start(): Promise<void> {
    const client = await this.connect();
    const { rows } = await client.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and application_name = $1 and pid <> pg_backend_pid()`,
      [this.applicationName],
    );
    if ((rows[0]?.n ?? 0) > 0) {
      await this.close();
      throw new InstanceIdInUseError(this.opts.instanceId);
    }
    await this.tick();
    this.timer = this.opts.clock.setInterval(() => void this.tick(), this.opts.leaseMs);
  }

  /** One attempt now (also what the lease timer runs); resolves when it is done. */
  tick(): Promise<void> {
    this.ticking ??= this.attempt().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  /** Instance id of the current leader (any instance's view), or null while nobody holds the lock. */
  async leader(): Promise<string | null> {
    const client = await this.connect();
    const { rows } = await client.query<{ name: string }>(
      `select a.application_name as name
         from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted and l.objsubid = 2
          and l.database = (select oid from pg_database where datname = current_database())
          and l.classid = $1::bigint::oid and l.objid = $2::bigint::oid`,
      [LOCK_CLASS, this.lockKey],
    );
    const name = rows[0]?.name;
    return name?.startsWith(this.namespace) ? name.slice(this.namespace.length) : null;
  }

  /** Instance ids with a live session on this database and schema, sorted. */
  async instances(): Promise<string[]> {
    const client = await this.connect();
    const { rows } = await client.query<{ name: string }>(
      `select distinct application_name as name from pg_stat_activity
        where datname = current_database() and starts_with(application_name, $1)`,
      [this.namespace],
    );
    return rows.map((r) => r.name.slice(this.namespace.length)).sort();
  }

  /** Steps down (closing the session releases the lock at once) and stops trying. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) this.opts.clock.clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    const client = this.client;
    this.client = null;
    this.setLeading(false);
    await client?.end().catch(() => undefined);
  }

  private async attempt(): Promise<void> {
    if (this.closed) return;
    try {
      const client = await this.connect();
      if (this.leading) {
        // The lock lives as long as the session: a session that answers still holds it.
        await client.query('select 1');
        return;
      }
      const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [
        LOCK_CLASS,
        this.lockKey,
      ]);
      if (rows[0]?.ok && !this.closed) this.setLeading(true);
    } catch (err) {
      this.opts.logger.warn({ err }, 'leader lease check failed');
      this.dropClient();
    }
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.opts.connectionString, keepAlive: true });
    client.on('error', (err) => {
      this.opts.logger.warn({ err }, 'leader session lost');
      if (this.client === client) this.dropClient();
    });
    await client.connect();
    try {
      const { rows } = await client.query<{ schema: string | null }>('select current_schema() as schema');
      const schema = rows[0]?.schema ?? '';
      this.namespace = `${APP_PREFIX}${schema}:`;
      this.applicationName = `${this.namespace}${this.opts.instanceId}`;
      this.lockKey = hash31(schema);
      // PostgreSQL cuts application_name at 63 bytes, which would merge instances.
      if (Buffer.byteLength(this.applicationName) > 63) {
        throw new Error(
          `instance id "${this.opts.instanceId}" is too long with schema "${schema}" (63 bytes together at most)`,
        );
      }
      await client.query(`select set_config('application_name', $1, false)`, [this.applicationName]);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new Error('leader election closed');
    }
    this.client = client;
    return client;
  }

  /** The session is gone, and the lock with it: stop leading now, reconnect at the next lease. */
  private dropClient(): void {
    const client = this.client;
    this.client = null;
    this.setLeading(false);
    void client?.end().catch(() => undefined);
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.opts.logger.info(
      { instanceId: this.opts.instanceId, leader: leading },
      leading ? 'leading' : 'no longer leading',
    );
    for (const l of this.listeners) {
      try {
        l(leading);
      } catch (err) {
        this.opts.logger.error({ err }, 'leader change listener failed');
      }
    }
  }
}

/** FNV-1a, kept to 31 bits so the key is a non-negative int4 (pg_locks shows it as an oid). */
function hash31(text: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(text)) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}
