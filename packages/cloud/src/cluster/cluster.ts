import { backgroundClock, type Clock } from '@bematic/protocol';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { parseDatabaseUrl } from '../db/database.js';
import { ALWAYS_LEADER, type LeaderGate, PostgresLeaderElection } from './leader.js';
import { lockSqliteDatabase, type ProcessLock } from './sqlite-lock.js';

/** What /readyz and /bm agents show about the service this instance belongs to. */
export interface ClusterStatus {
  instanceId: string;
  /** `single`: SQLite, one process that always leads; `postgres`: instances elect a leader. */
  mode: 'single' | 'postgres';
  isLeader: boolean;
  /** Instance id of the leader; null while the lock is free (a leader just died). */
  leader: string | null;
  /** Live instances on this database (this one alone on SQLite). */
  instances: string[];
}

export interface ClusterView {
  readonly instanceId: string;
  status(): Promise<ClusterStatus>;
  /** Which instance holds each connected agent's socket (agent id → instance id). */
  holders?(): Promise<Record<string, string>>;
}

export interface Cluster extends ClusterView {
  readonly gate: LeaderGate;
  close(): Promise<void>;
}

export interface StartClusterOptions {
  databaseUrl: string;
  instanceId: string;
  leaseMs: number;
  logger: Logger;
  /** Where bematic_cluster_leader and bematic_cloud_info are exported (MetricsCollector.registry). */
  registry?: Registry;
  clock?: Clock;
}

/**
 * Joins the service: on SQLite, takes the single-process lock (a second cloud
 * on the same file fails here, before touching it); on PostgreSQL, starts the
 * leader election. Called before the database is opened.
 */
export async function startCluster(opts: StartClusterOptions): Promise<Cluster> {
  const { instanceId } = opts;
  const target = parseDatabaseUrl(opts.databaseUrl);
  let gate: LeaderGate;
  let status: () => Promise<ClusterStatus>;
  let release: () => Promise<void>;
  if (target.kind === 'sqlite') {
    const lock: ProcessLock | null =
      target.filename === ':memory:' ? null : lockSqliteDatabase(target.filename);
    gate = ALWAYS_LEADER;
    status = async () => ({
      instanceId,
      mode: 'single',
      isLeader: true,
      leader: instanceId,
      instances: [instanceId],
    });
    release = async () => lock?.release();
  } else {
    const election = new PostgresLeaderElection({
      connectionString: target.connectionString,
      instanceId,
      leaseMs: opts.leaseMs,
      clock: opts.clock ?? backgroundClock,
      logger: opts.logger.child({ component: 'leader' }),
    });
    await election.start();
    gate = election;
    status = async () => {
      const [leader, instances] = await Promise.all([election.leader(), election.instances()]);
      return { instanceId, mode: 'postgres', isLeader: election.isLeader, leader, instances };
    };
    release = () => election.close();
  }
  const detachMetrics = opts.registry ? exportMetrics(opts.registry, instanceId, gate) : () => undefined;
  let closing: Promise<void> | null = null;
  return {
    instanceId,
    gate,
    status,
    close: () => {
      closing ??= (async () => {
        detachMetrics();
        await release();
      })();
      return closing;
    },
  };
}

/**
 * `instance_id`, not `instance`: Prometheus sets `instance` to the scrape target
 * itself and would rename ours to `exported_instance`.
 */
function exportMetrics(registry: Registry, instanceId: string, gate: LeaderGate): () => void {
  const info = new Gauge({
    name: 'bematic_cloud_info',
    help: 'This cloud instance (always 1)',
    labelNames: ['instance_id'],
    registers: [registry],
  });
  info.set({ instance_id: instanceId }, 1);
  const leader = new Gauge({
    name: 'bematic_cluster_leader',
    help: '1 while this instance runs the leader-only jobs (retention, queue expiry, reconciliation), else 0',
    labelNames: ['instance_id'],
    registers: [registry],
  });
  const set = (isLeader: boolean) => leader.set({ instance_id: instanceId }, isLeader ? 1 : 0);
  set(gate.isLeader);
  return gate.onChange(set);
}
