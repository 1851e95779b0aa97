import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Migration, Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/database.js';
import { MIGRATIONS, migrateToLatest } from '../../src/db/migrations/index.js';
import { createRepositories } from '../../src/db/repositories/index.js';
import type { Repositories } from '../../src/db/repositories/types.js';
import { newTaskInput, openPostgresSchema } from '../support/database.js';

const DAY = 86_400_000;
const T0 = 1_700_000_000_000;
const NAME = '016-history-reads';

/** Moves the database to just before or just after migration 016, as a deployment would. */
function migrator(database: Database, upTo016: boolean): Migrator {
  const names = Object.keys(MIGRATIONS);
  const wanted = upTo016 ? names : names.filter((n) => n !== NAME);
  const migrations: Record<string, Migration> = {};
  for (const n of wanted) migrations[n] = MIGRATIONS[n] as Migration;
  return new Migrator({
    db: database.db,
    provider: { getMigrations: async () => migrations },
    allowUnorderedMigrations: true,
    ...(database.schema ? { migrationTableSchema: database.schema } : {}),
  });
}

async function tables(database: Database): Promise<string[]> {
  return (await database.db.introspection.getTables()).map((t) => t.name);
}

/** What 016's reads answer, each checked against the rows themselves. */
async function expectReadsMatchRows(database: Database, repos: Repositories, now: number): Promise<void> {
  const rows = await database.db
    .selectFrom('tasks')
    .select(['id', 'project_id', 'created_at', 'cost_usd', 'prompt'])
    .execute();
  const since = now - 6 * DAY - 5_000;
  const perProject = new Map<string, { key: string; costUsd: number; tasks: number }>();
  for (const r of rows.filter((r) => r.created_at >= since)) {
    const b = perProject.get(r.project_id) ?? { key: r.project_id, costUsd: 0, tasks: 0 };
    b.costUsd += r.cost_usd;
    b.tasks += 1;
    perProject.set(r.project_id, b);
  }
  expect(await repos.taskSearch.costs('project', since)).toEqual(
    [...perProject.values()].sort((a, b) => b.costUsd - a.costUsd || (a.key < b.key ? -1 : 1)),
  );
  const days = (await repos.taskSearch.costs('day', since, -60)).filter((d) => d.tasks > 0);
  expect(days.reduce((n, d) => n + d.tasks, 0)).toBe(rows.filter((r) => r.created_at >= since).length);

  const archived = await database.db
    .selectFrom('archived_tasks')
    .select(sql<number>`count(*)`.as('n'))
    .executeTakeFirstOrThrow();
  expect(await repos.archivedTasks.count()).toBe(Number(archived.n));

  // The oldest rows hold the word, far past the first window of newest rows: one call finds them all.
  const page = await repos.taskSearch.searchPage({ limit: 10, text: 'PELICAN' });
  expect(page.scannedTo).toBeNull();
  expect(page.rows.map((r) => r.id).sort()).toEqual(
    rows
      .filter((r) => r.prompt.includes('pelican'))
      .map((r) => r.id)
      .sort(),
  );
}

function describeMigration(name: string, open: () => Promise<Database>): void {
  describe(`migration 016 on a database with history: ${name}`, () => {
    let database: Database | undefined;
    afterEach(async () => {
      await database?.close();
      database = undefined;
    });

    it('indexes and sums the tasks already there, reverts cleanly, and applies again', async () => {
      database = await open();
      const { error } = await migrator(database, false).migrateToLatest();
      expect(error).toBeUndefined();
      let now = T0;
      const repos = createRepositories(database.db, { now: () => now });
      for (let i = 0; i < 120; i++) {
        now += 2 * 3_600_000 + 61_000;
        const prompt = i < 3 ? `the pelican ${i} report` : `tidy module ${i}`;
        const t = await repos.tasks.create(newTaskInput({ prompt, projectId: `proj_${i % 3}` }));
        await repos.tasks.transition(t.id, 'submitted');
        await repos.tasks.transition(t.id, 'running');
        await repos.tasks.transition(t.id, 'completed', { costUsd: (i % 9) / 8, result: `done ${i}` });
        if (i % 10 === 0) {
          await repos.archivedTasks.create({
            originalId: `task_old_${i}`,
            taskData: '{}',
            reason: 'r',
            metadata: {},
          });
        }
      }
      expect(await tables(database)).not.toContain('task_costs');

      expect((await migrateToLatest(database)).applied).toEqual([NAME]);
      await expectReadsMatchRows(database, repos, now);

      const down = await migrator(database, true).migrateTo('015-plan-first');
      expect(down.error).toBeUndefined();
      const left = await tables(database);
      for (const t of ['task_costs', 'archive_totals', 'task_search', 'task_search_docs'])
        expect(left).not.toContain(t);
      // No trigger of 016 is left to write into what is gone.
      now += 60_000;
      const late = await repos.tasks.create(newTaskInput({ prompt: 'a late pelican' }));
      await repos.tasks.update(late.id, { costUsd: 0.5 });
      await repos.tasks.delete((await repos.tasks.list({ limit: 1, olderThan: now - DAY }))[0]?.id ?? '');

      // Back to 015 reverted every later migration too: they all apply again.
      const after015 = Object.keys(MIGRATIONS).filter((n) => n > '015-plan-first');
      expect((await migrateToLatest(database)).applied).toEqual(after015);
      await expectReadsMatchRows(database, repos, now);
    });
  });
}

describeMigration('SQLite', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bematic-016-'));
  const database = await createDatabase(`sqlite:${path.join(dir, 'bematic.db')}`);
  return {
    ...database,
    close: async () => {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

const postgresUrl = process.env.BEMATIC_TEST_POSTGRES_URL;
describe.skipIf(!postgresUrl)('PostgreSQL', () => {
  describeMigration('PostgreSQL', async () => {
    return openPostgresSchema(postgresUrl ?? '', 'bematic_016');
  });
});
