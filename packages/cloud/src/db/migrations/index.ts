import { type Kysely, type Migration, type MigrationProvider, Migrator, NO_MIGRATIONS, sql } from 'kysely';
import { type Database, dialectOf } from '../database.js';
import { MigrationError } from '../errors.js';
import type { Schema } from '../schema.js';
import { initial } from './001-initial.js';
import { chatDefaults } from './002-chat-defaults.js';
import { workspaces } from './003-workspaces.js';
import { dashboard } from './004-dashboard.js';
import { permissionRequests } from './005-permission-requests.js';
import { taskAttempts } from './006-task-attempts.js';
import { slackDeliveries } from './007-slack-deliveries.js';
import { historyIndexes } from './008-history-indexes.js';
import { agentPresence } from './009-agent-presence.js';
import { rateLimits } from './010-rate-limits.js';
import { taskPlans } from './011-task-plans.js';
import { agentHealth } from './012-agent-health.js';
import { cancelRequests } from './013-cancel-requests.js';
import { consoleCredentials } from './014-console-credentials.js';
import { planFirst } from './015-plan-first.js';
import { historyReads } from './016-history-reads.js';
import { agentListing } from './017-agent-listing.js';

/**
 * Every migration, in order. Listed in code rather than discovered on disk so
 * the same set runs from src (tests), from dist, and from a bundled CLI.
 * Append new ones as `'002-…': …`; never edit or rename an applied one.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '001-initial': initial,
  '002-chat-defaults': chatDefaults,
  '003-workspaces': workspaces,
  '004-dashboard': dashboard,
  '005-permission-requests': permissionRequests,
  '006-task-attempts': taskAttempts,
  '007-slack-deliveries': slackDeliveries,
  '008-history-indexes': historyIndexes,
  '009-agent-presence': agentPresence,
  '010-rate-limits': rateLimits,
  '011-task-plans': taskPlans,
  '012-agent-health': agentHealth,
  '013-cancel-requests': cancelRequests,
  '014-console-credentials': consoleCredentials,
  '015-plan-first': planFirst,
  '016-history-reads': historyReads,
  '017-agent-listing': agentListing,
};

const provider: MigrationProvider = { getMigrations: async () => ({ ...MIGRATIONS }) };

export interface MigrationState {
  name: string;
  executedAt: Date | null;
}

async function migratorFor(target: Database | Kysely<Schema>): Promise<Migrator> {
  const isDatabase = 'dialect' in target && 'close' in target;
  const db = isDatabase ? target.db : target;
  // Kysely's bookkeeping tables go in the schema the migrations write to, or another schema's tables in the
  // same database (another deployment, a parallel test) would be mistaken for ours. Without a dedicated
  // schema that is the connection's current one (public, or what the URL's search_path names).
  const schema =
    (isDatabase ? target.schema : undefined) ??
    (dialectOf(db) === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]?.schema
      : undefined);
  return new Migrator({
    db,
    provider,
    // Migrations are numbered when work starts and land in any order; a database that
    // already ran a later number must still pick up an earlier one that landed after it.
    allowUnorderedMigrations: true,
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
}

/**
 * Kysely's migrator first lists every table of the database, in every schema. A schema dropped by someone else
 * meanwhile (another deployment's, a parallel test's) fails that one listing with invalid_schema_name though
 * nothing of ours is wrong: list again. Anything else is the migration's own error.
 */
const SCHEMA_DROPPED_MEANWHILE = '3F000';
const MAX_LISTINGS = 5;

function droppedMeanwhile(error: unknown): boolean {
  const code = (e: unknown) => (e as { code?: unknown } | null)?.code;
  return (
    code(error) === SCHEMA_DROPPED_MEANWHILE ||
    code((error as { cause?: unknown } | null)?.cause) === SCHEMA_DROPPED_MEANWHILE
  );
}

/** Runs `step` on a migrator for `target`, again when the table listing lost a race with a dropped schema. */
export async function withMigrator<R extends { error?: unknown }>(
  target: Database | Kysely<Schema>,
  step: (m: Migrator) => Promise<R>,
): Promise<R> {
  for (let listing = 1; ; listing++) {
    try {
      const result = await step(await migratorFor(target));
      if (listing < MAX_LISTINGS && droppedMeanwhile(result.error)) continue;
      return result;
    } catch (err) {
      if (listing < MAX_LISTINGS && droppedMeanwhile(err)) continue;
      throw err;
    }
  }
}

/** Applies every pending migration. Throws MigrationError naming the failing one. */
export async function migrateToLatest(target: Database | Kysely<Schema>): Promise<{ applied: string[] }> {
  const { error, results = [] } = await withMigrator(target, (m) => m.migrateToLatest());
  if (error) throw new MigrationError(results.find((r) => r.status === 'Error')?.migrationName, error);
  return { applied: results.filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}

/** Every known migration with when it was applied (null = pending). */
export async function migrationStatus(
  target: Database | Kysely<Schema>,
): Promise<{ migrations: MigrationState[]; pending: string[] }> {
  const { infos } = await withMigrator(target, async (m) => ({
    infos: await m.getMigrations(),
    error: undefined,
  }));
  const migrations = infos.map((m) => ({ name: m.name, executedAt: m.executedAt ?? null }));
  return { migrations, pending: migrations.filter((m) => m.executedAt === null).map((m) => m.name) };
}

/** Reverts every migration (tests and `bematic migrate --reset` only). */
export async function migrateToEmpty(target: Database | Kysely<Schema>): Promise<{ reverted: string[] }> {
  const { error, results = [] } = await withMigrator(target, (m) => m.migrateTo(NO_MIGRATIONS));
  if (error) throw new MigrationError(results.find((r) => r.status === 'Error')?.migrationName, error);
  return { reverted: results.filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
