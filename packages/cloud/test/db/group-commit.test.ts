import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations/index.js';
import { createRepositories } from '../../src/db/repositories/index.js';
import type { Repositories } from '../../src/db/repositories/types.js';
import { openPostgresSchema } from '../support/database.js';

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const postgresUrl = process.env.BEMATIC_TEST_POSTGRES_URL;

const targets: Array<{ name: string; open: () => Promise<Database>; skip: boolean }> = [
  {
    name: 'SQLite',
    skip: false,
    open: async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'bematic-group-commit-'));
      tempDirs.push(dir);
      return createDatabase(`sqlite:${path.join(dir, 'bematic.db')}`);
    },
  },
  {
    name: 'PostgreSQL',
    skip: !postgresUrl,
    open: async () => {
      return openPostgresSchema(postgresUrl ?? '', 'bematic_test');
    },
  },
];

for (const target of targets) {
  describe.skipIf(target.skip)(`group commit on ${target.name}`, () => {
    let database: Database;
    let repos: Repositories;
    let begun: number;

    beforeEach(async () => {
      database = await target.open();
      await migrateToLatest(database.db);
      // Count the database transactions actually opened (the real Kysely instance, observed).
      begun = 0;
      const transaction = database.db.transaction.bind(database.db);
      database.db.transaction = () => {
        begun++;
        return transaction();
      };
      repos = createRepositories(database.db);
    });
    afterEach(async () => {
      await database.close();
    });

    const entry = (resourceId: string) => ({
      action: 'test.entry',
      actor: 'test',
      resourceType: 'task',
      resourceId,
      details: {},
    });
    const logged = async () =>
      (await repos.audit.list({ action: 'test.entry' })).map((e) => e.resourceId).sort();

    it('runs the transactions asked for in one tick under one commit, each with its own result', async () => {
      const results = await Promise.all(
        ['a', 'b', 'c'].map((id) =>
          repos.transaction(async (tx) => {
            await tx.audit.log(entry(id));
            return id.toUpperCase();
          }),
        ),
      );
      expect(results).toEqual(['A', 'B', 'C']);
      expect(begun).toBe(1);
      expect(await logged()).toEqual(['a', 'b', 'c']);
    });

    it('rolls back only the unit that threw, and hands its caller the error', async () => {
      const outcomes = await Promise.allSettled([
        repos.transaction((tx) => tx.audit.log(entry('kept-1'))),
        repos.transaction(async (tx) => {
          await tx.audit.log(entry('undone'));
          throw new Error('refused');
        }),
        repos.transaction((tx) => tx.audit.log(entry('kept-2'))),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ message: 'refused' });
      // SQLite rolls the unit back to its savepoint; PostgreSQL (no savepoints, each would be a round trip)
      // runs that batch again, one transaction per unit.
      expect(begun).toBe(target.name === 'SQLite' ? 1 : 4);
      expect(await logged()).toEqual(['kept-1', 'kept-2']);
    });

    it('keeps the other units of a batch whose unit swallowed a failed statement', async () => {
      const key = {
        id: 'key_dup',
        agentId: 'agent_1',
        prefix: 'bmk_dup',
        keyHash: 'h',
        label: null,
        expiresAt: null,
      };
      await repos.apiKeys.create(key);
      const outcomes = await Promise.allSettled([
        repos.transaction((tx) => tx.audit.log(entry('kept-1'))),
        repos.transaction(async (tx) => {
          // A unique violation, caught: on PostgreSQL the shared transaction is aborted from here on.
          await tx.apiKeys.create(key).catch(() => undefined);
          return 'swallowed';
        }),
      ]);
      // SQLite goes on after a failed statement; PostgreSQL rolls the unit's own transaction back at COMMIT
      // and says so (the unit then runs alone), rather than report it committed.
      expect(outcomes.map((o) => o.status)).toEqual([
        'fulfilled',
        target.name === 'SQLite' ? 'fulfilled' : 'rejected',
      ]);
      expect(await logged()).toEqual(['kept-1']);
    });

    it('writes the audit entries asked for in one tick in one statement of one commit, each with its own id', async () => {
      const entries = await Promise.all(['a', 'b', 'c'].map((id) => repos.audit.log(entry(id))));
      expect(begun).toBe(1);
      expect(entries.map((e) => e.resourceId)).toEqual(['a', 'b', 'c']);
      const ids = entries.map((e) => e.id);
      expect([...ids].sort((x, y) => x - y)).toEqual(ids);
      expect(new Set(ids).size).toBe(3);
      const stored = await repos.audit.list({ action: 'test.entry' });
      expect(Object.fromEntries(stored.map((e) => [e.id, e.resourceId]))).toEqual({
        [ids[0] as number]: 'a',
        [ids[1] as number]: 'b',
        [ids[2] as number]: 'c',
      });
    });

    it('settles a caller only after its commit: what is asked for meanwhile waits for the next one', async () => {
      let releaseFirst: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        releaseFirst = resolve;
      });
      let firstSettled = false;
      const first = repos
        .transaction(async (tx) => {
          await tx.audit.log(entry('first'));
          await held;
        })
        .then(() => {
          firstSettled = true;
        });
      await new Promise((resolve) => setImmediate(resolve));
      const second = repos.transaction((tx) => tx.audit.log(entry('second')));
      await new Promise((resolve) => setImmediate(resolve));
      expect(firstSettled).toBe(false);
      releaseFirst();
      await Promise.all([first, second]);
      expect(begun).toBe(2);
      expect(await logged()).toEqual(['first', 'second']);
    });
  });
}
