import { randomUUID } from 'node:crypto';
import { ManualClock } from '@bematic/testkit';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheBus } from '../cluster/cache-bus.js';
import { createDatabase, type Database } from '../db/database.js';
import { migrateToLatest } from '../db/migrations/index.js';
import { createRepositories } from '../db/repositories/index.js';
import { type ConsoleChange, ConsoleChatSurface, DEFAULT_CONSOLE_CHANNEL } from './console-surface.js';
import { consoleTsSalt, shareConsole } from './console-sync.js';

const url = process.env.BEMATIC_TEST_POSTGRES_URL;
const CHANNEL = DEFAULT_CONSOLE_CHANNEL;

describe.skipIf(!url)('the web console across instances (one store, LISTEN/NOTIFY)', () => {
  const schema = `bematic_console_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const inSchema = `${url}${url?.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const closers: Array<() => Promise<void>> = [];
  let database: Database;

  /** One instance's console: its own repositories (pool) and bus on the shared schema. */
  const instance = async (instanceId: string, shared = true) => {
    const db = await createDatabase(url ?? '', { schema });
    const repos = createRepositories(db.db);
    const surface = new ConsoleChatSurface({
      store: repos.consoleMessages,
      tsSalt: consoleTsSalt(instanceId),
    });
    const changes: ConsoleChange[] = [];
    const waiters: Array<{ pred: (c: ConsoleChange) => boolean; resolve: (c: ConsoleChange) => void }> = [];
    surface.subscribe((c) => {
      changes.push(c);
      for (const w of waiters.filter((w) => w.pred(c))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(c);
      }
    });
    const next = (pred: (c: ConsoleChange) => boolean) =>
      new Promise<ConsoleChange>((resolve) => waiters.push({ pred, resolve }));
    const bus = new CacheBus({
      connectionString: inSchema,
      instanceId,
      clock: new ManualClock(),
      logger: pino({ level: 'silent' }),
    });
    if (shared) {
      shareConsole({ surface, bus, logger: pino({ level: 'silent' }) });
      await bus.start({ drop: () => {}, dropAll: () => {} });
    }
    closers.push(async () => {
      await surface.flush();
      await bus.close();
      await db.close();
    });
    return { surface, changes, next };
  };

  beforeAll(async () => {
    database = await createDatabase(url ?? '', { schema });
    await migrateToLatest(database);
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(database.db);
    await database.close();
  });

  it('a conversation started on A and answered through B reads the same on both, and either takes the next reply in its thread', async () => {
    const a = await instance('cloud-a');
    const b = await instance('cloud-b');

    // A person asks on A: B shows it too.
    let seen = b.next((c) => c.kind === 'message.posted');
    const root = a.surface.postUserMessage(CHANNEL, 'U1', '@bematic fix the build');
    expect((await seen).message).toMatchObject({
      ts: root.ts,
      text: '@bematic fix the build',
      threadTs: null,
    });

    // B (holding the agent) posts the progress message in that thread and updates it: A shows both.
    seen = a.next((c) => c.kind === 'message.posted');
    const progress = await b.surface.post(CHANNEL, { text: 'Task started' }, root.ts);
    expect((await seen).message).toMatchObject({ ts: progress.ts, threadTs: root.ts, text: 'Task started' });
    seen = a.next((c) => c.kind === 'message.updated');
    await b.surface.update(CHANNEL, progress.ts, { text: 'Task completed' });
    expect((await seen).message).toMatchObject({ ts: progress.ts, text: 'Task completed' });
    expect(a.surface.threads(CHANNEL, 'U1')).toEqual(b.surface.threads(CHANNEL, 'U1'));

    // A follow-up typed on B in A's thread lands in it, on both.
    seen = a.next((c) => c.kind === 'message.posted');
    const followUp = b.surface.postUserMessage(CHANNEL, 'U1', 'and the tests', root.ts);
    expect(followUp.threadTs).toBe(root.ts);
    expect((await seen).message).toMatchObject({ ts: followUp.ts, threadTs: root.ts });
    expect(a.surface.threads(CHANNEL, 'U1')[0]?.replies.map((r) => r.text)).toEqual([
      'Task completed',
      'and the tests',
    ]);
  });

  it('an instance that was not told (or not listening) reads a thread started elsewhere back from the store before a reply to it', async () => {
    const a = await instance('cloud-c');
    const deaf = await instance('cloud-d', false);
    const root = a.surface.postUserMessage(CHANNEL, 'U2', '@bematic look at this');
    await a.surface.flush();
    expect(() => deaf.surface.postUserMessage(CHANNEL, 'U2', 'more', root.ts)).toThrow(/no thread/);
    await deaf.surface.recall(CHANNEL, root.ts);
    expect(deaf.surface.postUserMessage(CHANNEL, 'U2', 'more', root.ts).threadTs).toBe(root.ts);
  });

  it('two instances posting in the same millisecond make different ts', () => {
    const now = () => 1_800_000_000_000;
    const a = new ConsoleChatSurface({ now, tsSalt: consoleTsSalt('cloud-a') });
    const b = new ConsoleChatSurface({ now, tsSalt: consoleTsSalt('cloud-b') });
    expect(consoleTsSalt('cloud-a')).not.toBe(consoleTsSalt('cloud-b'));
    expect(a.postUserMessage(CHANNEL, 'U1', 'x').ts).not.toBe(b.postUserMessage(CHANNEL, 'U1', 'y').ts);
  });
});
