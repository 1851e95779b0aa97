import {
  ApiKeyService,
  type CloudConfig,
  createDatabase,
  createRepositories,
  loadCloudConfig,
  migrateToLatest,
  type Repositories,
} from '@bematic/cloud';

export interface AdminRepositories {
  repos: Repositories;
  apiKeys: ApiKeyService;
}

/** Runs an administrative command on the configured database (migrated), closed again whatever happens. */
export async function withRepositories<T>(
  run: (r: AdminRepositories) => Promise<T>,
  config: CloudConfig = loadCloudConfig(),
): Promise<T> {
  const database = await createDatabase(config.DATABASE_URL);
  try {
    await migrateToLatest(database);
    const repos = createRepositories(database.db);
    return await run({ repos, apiKeys: new ApiKeyService({ apiKeys: repos.apiKeys, audit: repos.audit }) });
  } finally {
    await database.close();
  }
}

/** Plain fixed-width table for terminal output. */
export function table(rows: Record<string, string | number | null>[]): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0]!);
  const cell = (v: string | number | null) => (v === null ? '—' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c] ?? null).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    line(cols),
    line(widths.map((w) => '─'.repeat(w))),
    ...rows.map((r) => line(cols.map((c) => cell(r[c] ?? null)))),
  ].join('\n');
}

export const iso = (ms: number | null) =>
  ms === null ? null : new Date(ms).toISOString().replace('.000Z', 'Z');

/** Waits for SIGINT/SIGTERM, then runs `stop` once. */
export function onShutdown(stop: () => Promise<void>, log: (msg: string) => void): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log(`${signal} received, shutting down…`);
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => handler('SIGINT'));
  process.once('SIGTERM', () => handler('SIGTERM'));
}
