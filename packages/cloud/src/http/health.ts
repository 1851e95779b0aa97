import { sql } from 'kysely';
import type { ClusterStatus } from '../cluster/cluster.js';
import type { Database } from '../db/database.js';
import { migrationStatus } from '../db/migrations/index.js';

export interface ProbeResult {
  ok: boolean;
  detail?: string;
}

/** What GET /readyz asks. Each probe answers quickly; a throwing probe counts as not ready. */
export interface HealthProbes {
  /** The database answers and every migration has been applied. */
  database(): Promise<ProbeResult>;
  /** The agent gateway accepts connections. */
  gateway(): ProbeResult | Promise<ProbeResult>;
  /** This instance and the service it belongs to (shown, not a readiness condition). */
  cluster?(): Promise<ClusterStatus>;
}

/** Database readiness: a trivial query, then pending migrations. */
export function databaseProbe(database: Database): () => Promise<ProbeResult> {
  return async () => {
    try {
      await sql`select 1`.execute(database.db);
    } catch (err) {
      return { ok: false, detail: `database unreachable: ${(err as Error).message}` };
    }
    const { pending } = await migrationStatus(database);
    return pending.length === 0
      ? { ok: true }
      : { ok: false, detail: `migrations pending: ${pending.join(', ')}` };
  };
}
