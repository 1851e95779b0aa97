import { describe, expect, it } from 'vitest';
import { createDatabase } from '../database.js';
import { withMigrator } from './index.js';

/** What node-postgres raises when a schema the statement looked at is gone. */
const schemaDropped = () =>
  Object.assign(new Error('schema "bematic_t_1" does not exist'), { code: '3F000' });

describe('withMigrator', () => {
  it('lists again when a schema was dropped meanwhile, thrown or reported', async () => {
    const database = await createDatabase('sqlite::memory:');
    try {
      let calls = 0;
      const thrown = await withMigrator(database, async () => {
        if (++calls === 1) throw schemaDropped();
        return { error: undefined, calls };
      });
      expect(thrown).toEqual({ error: undefined, calls: 2 });
      let reportedCalls = 0;
      const reported = await withMigrator(database, async () =>
        ++reportedCalls < 3
          ? { error: new Error('listing failed', { cause: schemaDropped() }) }
          : { error: undefined },
      );
      expect(reported).toEqual({ error: undefined });
      expect(reportedCalls).toBe(3);
    } finally {
      await database.close();
    }
  });

  it('gives up after a few listings and leaves any other error alone', async () => {
    const database = await createDatabase('sqlite::memory:');
    try {
      let calls = 0;
      await expect(
        withMigrator(database, async () => {
          calls++;
          throw schemaDropped();
        }),
      ).rejects.toThrow('does not exist');
      expect(calls).toBe(5);
      let other = 0;
      const failed = await withMigrator(database, async () => {
        other++;
        return { error: Object.assign(new Error('syntax error'), { code: '42601' }) };
      });
      expect(other).toBe(1);
      expect(failed.error).toBeInstanceOf(Error);
    } finally {
      await database.close();
    }
  });
});
