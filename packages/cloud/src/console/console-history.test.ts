import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../../test/support/database.js';
import { ConsoleChatSurface } from './console-surface.js';

const C = 'console:local';

/** A pino logger whose lines the test can read. */
function recordingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines };
}

describe('console history in the database', () => {
  let t: TestDb;
  const clock = { now: 1_700_000_000_000 };
  beforeEach(async () => {
    t = await openTestDb(clock.now);
  });
  afterEach(async () => {
    await t.close();
  });

  const open = (logger = pino({ level: 'silent' })) =>
    new ConsoleChatSurface({ now: () => clock.now, store: t.repos.consoleMessages, logger });

  it('survives a restart: threads, replies, edits, reactions and blocks come back; ts keep increasing', async () => {
    const before = open();
    const mention = before.postUserMessage(C, 'console-user', 'code fix the login bug');
    const progress = await before.post(C, { text: 'Task started' }, mention.ts);
    await before.update(C, progress.ts, { text: 'Done', blocks: [{ type: 'divider' }] });
    await before.addReaction(C, mention.ts, 'white_check_mark');
    before.postUserMessage(C, 'console-user', '/bm status', null, 'console-user');
    await before.postEphemeral(C, 'someone-else', { text: 'not yours' });
    await before.flush();

    clock.now += 10;
    const after = open();
    expect(await after.restore()).toBe(3);
    expect(after.threads(C, 'console-user')).toEqual(before.threads(C, 'console-user'));
    const [first] = after.threads(C, 'console-user');
    expect(first?.replies[0]).toMatchObject({
      text: 'Done',
      blocks: [{ type: 'divider' }],
      editedAt: clock.now - 10,
    });
    expect(first?.root.reactions).toEqual(['white_check_mark']);
    // The task keeps answering in its thread after the restart.
    const reply = await after.post(C, { text: 'Follow-up' }, mention.ts);
    expect(Number(reply.ts)).toBeGreaterThan(Number(progress.ts));
    await after.update(C, progress.ts, { text: 'Done (updated after restart)' });
    await after.flush();
    const again = open();
    await again.restore();
    expect(again.threads(C, 'console-user')[0]?.replies.map((r) => r.text)).toEqual([
      'Done (updated after restart)',
      'Follow-up',
    ]);
  });

  it('reads a thread that left memory back from the database before answering in it', async () => {
    const small = new ConsoleChatSurface({
      now: () => clock.now,
      store: t.repos.consoleMessages,
      maxThreadsPerChannel: 1,
    });
    const old = small.postUserMessage(C, 'console-user', 'old request');
    const oldProgress = await small.post(C, { text: 'working' }, old.ts);
    small.postUserMessage(C, 'console-user', 'new request');
    expect(small.getMessage(C, old.ts)).toBeUndefined();
    await small.update(C, oldProgress.ts, { text: 'finished' });
    expect(small.getMessage(C, oldProgress.ts)?.text).toBe('finished');
    await small.flush();
    expect((await t.repos.consoleMessages.find(oldProgress.ts))?.text).toBe('finished');
  });

  it('drops updates to a message that no longer exists, with one warning, and never throws', async () => {
    const { logger, lines } = recordingLogger();
    const s = open(logger);
    for (let i = 0; i < 100; i++) await s.update(C, '1600000000.000001', { text: `update ${i}` });
    await s.update(C, '1600000000.000002', { text: 'other' });
    const warnings = lines.filter((l) => l.msg.includes('no longer exists'));
    expect(warnings).toHaveLength(2);
    expect(s.threads(C, 'console-user')).toEqual([]);
  });
});
