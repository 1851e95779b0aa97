import { describe, expect, it } from 'vitest';
import { type ConsoleChange, ConsoleChatSurface, ConsoleSurfaceError } from './console-surface.js';

const C = 'console:local';

function surface(opts: ConstructorParameters<typeof ConsoleChatSurface>[0] = {}) {
  const clock = { now: 1_700_000_000_000 };
  const s = new ConsoleChatSurface({ now: () => clock.now, ...opts });
  const changes: ConsoleChange[] = [];
  s.subscribe((c) => changes.push(c));
  return { s, clock, changes };
}

describe('ConsoleChatSurface', () => {
  it('generates unique, increasing Slack-style timestamps', async () => {
    const { s, clock } = surface();
    const a = await s.post(C, { text: 'one' });
    const b = await s.post(C, { text: 'two' });
    clock.now += 1500;
    const c = await s.post(C, { text: 'three' });
    expect(a.ts).toBe('1700000000.000000');
    expect(b.ts).toBe('1700000000.000001');
    expect(c.ts).toBe('1700000001.500000');
    expect(a).toEqual({ channelId: C, ts: a.ts });
  });

  it('threads replies under their root, including replies to replies', async () => {
    const { s } = surface();
    const mention = s.postUserMessage(C, 'console-user', 'code fix the login bug');
    const started = await s.post(C, { text: 'Started' }, mention.ts);
    await s.post(C, { text: 'Done' }, started.ts);
    const [thread] = s.threads(C, 'console-user');
    expect(thread?.root.text).toBe('code fix the login bug');
    expect(thread?.replies.map((r) => [r.text, r.threadTs])).toEqual([
      ['Started', mention.ts],
      ['Done', mention.ts],
    ]);
    expect(() => s.postUserMessage(C, 'console-user', 'x', '123.000000')).toThrow(ConsoleSurfaceError);
    await expect(s.post(C, { text: 'x' }, 'not-a-ts')).rejects.toMatchObject({ code: 'thread_not_found' });
    await expect(s.post('C0SLACK', { text: 'x' })).rejects.toBeInstanceOf(ConsoleSurfaceError);
  });

  it('updates messages and reactions, and tells subscribers', async () => {
    const { s, changes } = surface();
    const root = s.postUserMessage(C, 'console-user', 'hello');
    const posted = await s.post(C, { text: 'Working', blocks: [{ type: 'divider' }] }, root.ts);
    await s.update(C, posted.ts, { text: 'Finished' });
    await s.addReaction(C, root.ts, 'eyes');
    await s.addReaction(C, root.ts, 'eyes');
    await s.removeReaction(C, root.ts, 'eyes');
    await s.addReaction(C, root.ts, 'white_check_mark');
    expect(s.getMessage(C, posted.ts)).toMatchObject({ text: 'Finished', editedAt: expect.any(Number) });
    expect(s.getMessage(C, posted.ts)?.blocks).toBeUndefined();
    expect(s.getMessage(C, root.ts)?.reactions).toEqual(['white_check_mark']);
    expect(changes.map((c) => c.kind)).toEqual([
      'message.posted',
      'message.posted',
      'message.updated',
      'reaction.added',
      'reaction.removed',
      'reaction.added',
    ]);
    // A message that is gone: the update is dropped (no error to retry), nothing changes.
    await expect(s.update(C, '1.000000', { text: 'x' })).resolves.toBeUndefined();
    expect(changes).toHaveLength(6);
  });

  it('shows ephemerals to their user only', async () => {
    const { s, changes } = surface();
    const root = s.postUserMessage(C, 'alice', 'code fix it');
    await s.postEphemeral(C, 'alice', { text: 'only alice' }, root.ts);
    await s.postEphemeral(C, 'alice', { text: 'top-level for alice' });
    expect(s.threads(C, 'alice').flatMap((t) => [t.root.text, ...t.replies.map((r) => r.text)])).toEqual([
      'code fix it',
      'only alice',
      'top-level for alice',
    ]);
    expect(s.threads(C, 'bob').flatMap((t) => [t.root.text, ...t.replies.map((r) => r.text)])).toEqual([
      'code fix it',
    ]);
    const last = changes.at(-1);
    expect(last && ConsoleChatSurface.visibleTo(last, 'bob')).toBe(false);
    expect(last && ConsoleChatSurface.visibleTo(last, 'alice')).toBe(true);
  });

  it('recreates a forgotten thread when the cloud answers in it (after a restart)', async () => {
    const { s, changes } = surface();
    const reply = await s.post(C, { text: 'Task completed' }, '1699999999.000100');
    const thread = s.threads(C, 'u').find((t) => t.root.ts === '1699999999.000100');
    expect(thread?.root.text).toContain('Earlier conversation');
    expect(thread?.replies.map((r) => r.ts)).toEqual([reply.ts]);
    expect(changes.map((c) => c.message.ts)).toEqual(['1699999999.000100', reply.ts]);
    await s.post(C, { text: 'again' }, '1699999999.000100');
    expect(s.threads(C, 'u')).toHaveLength(1);
  });

  it('keeps memory bounded by dropping the oldest threads and replies', async () => {
    const { s } = surface({ maxThreadsPerChannel: 2, maxRepliesPerThread: 2 });
    const first = await s.post(C, { text: 't1' });
    await s.post(C, { text: 't2' });
    const third = await s.post(C, { text: 't3' });
    expect(s.threads(C, 'u').map((t) => t.root.text)).toEqual(['t2', 't3']);
    expect(s.getMessage(C, first.ts)).toBeUndefined();
    for (const n of [1, 2, 3]) await s.post(C, { text: `r${n}` }, third.ts);
    expect(s.threads(C, 'u')[1]?.replies.map((r) => r.text)).toEqual(['r2', 'r3']);
  });
});
