import { createDatabase, loadCloudConfig, migrateToLatest, migrationStatus } from '@bematic/cloud';
import type { Command } from 'commander';
import { table } from './shared.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('Apply pending database migrations (DATABASE_URL)')
    .option('--status', 'only list migrations and whether they are applied')
    .action(async (opts: { status?: boolean }) => {
      const config = loadCloudConfig();
      const database = await createDatabase(config.DATABASE_URL);
      try {
        if (!opts.status) {
          const { applied } = await migrateToLatest(database);
          console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Database is up to date.');
        }
        const status = await migrationStatus(database);
        console.log(
          table(
            status.migrations.map((m) => ({
              migration: m.name,
              applied: m.executedAt ? m.executedAt.toISOString() : 'pending',
            })),
          ),
        );
      } finally {
        await database.close();
      }
    });
}
