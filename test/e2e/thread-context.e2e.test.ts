import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ATTACHMENT_LIMITS } from '@bematic/protocol';
import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal, readThread } from './support.js';

// A 1×1 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

interface Block {
  type: string;
  text?: string;
  source?: { type: string; media_type: string; data: string };
}

/**
 * A mention inside someone else's thread, with an image and a text file, through the real Bolt app, the
 * Slack emulator, the agent and real Claude Code: what the scripted model receives is what Claude was given.
 */
describe('thread context and attachments', () => {
  let system: TestSystem;
  const firstUserContent = (): Block[] => {
    const request = system.model.mainLoopRequests().at(-1);
    const body = (request?.body ?? {}) as { messages?: Array<{ role: string; content: string | Block[] }> };
    const messages = body.messages;
    const first = messages?.find((m) => m.role === 'user')?.content ?? [];
    return typeof first === 'string' ? [{ type: 'text', text: first }] : first;
  };
  const promptText = () =>
    firstUserContent()
      .filter((b) => b.type === 'text')
      .map((b) => b.text)
      .join('\n');

  beforeAll(async () => {
    system = await startTestSystem({ settings: { BEMATIC_PROGRESS_INTERVAL_MS: '200' } });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
    system.emulator.addUser({ id: 'U0ADA', name: 'Ada' });
  });
  afterAll(() => system?.close());

  it('a mention in a thread that is not ours brings the earlier messages, the image and the text file', async () => {
    const root = await system.emulator.message({
      user: 'U0ADA',
      channel: system.channel,
      text: 'Login fails when the password has &lt;&amp;&gt; in it, log attached',
      files: [
        {
          name: 'error.log',
          mimetype: 'text/plain',
          content: 'TypeError: cannot read "hash" of undefined\n',
        },
      ],
    });
    await system.emulator.message({
      user: 'U0ALICE',
      botId: 'B0OTHERAPP',
      channel: system.channel,
      threadTs: root.ts,
      text: 'Same for me, <@U0ADA> — screenshot coming',
    });
    system.model.setScript([turn.text('Looked at the log and the screenshot.')]);
    const done = nextTerminal(system);
    const big = Buffer.alloc(ATTACHMENT_LIMITS.fileBytes + 1, 1);
    const mention = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      threadTs: root.ts,
      text: `<@${system.emulator.botUserId}> please fix this`,
      files: [
        { name: 'screen.png', mimetype: 'image/png', content: PNG },
        { name: 'huge.png', mimetype: 'image/png', content: big },
      ],
    });
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(task.prompt).toBe('please fix this');

    const content = firstUserContent();
    const image = content.find((b) => b.type === 'image');
    expect(image?.source).toEqual({ type: 'base64', media_type: 'image/png', data: PNG.toString('base64') });
    expect(content.filter((b) => b.type === 'image')).toHaveLength(1);
    const prompt = promptText();
    expect(prompt).toContain('Earlier messages in the Slack thread');
    expect(prompt).toContain(
      '@Ada: Login fails when the password has <&> in it, log attached [attached: error.log]',
    );
    expect(prompt).toContain('@alice: Same for me, @Ada — screenshot coming');
    expect(prompt).toContain('please fix this');
    expect(prompt).toContain('.bematic/attachments/error.log');
    expect(prompt).not.toContain('&lt;');
    // Earlier messages come before the request; the mention itself is not repeated as context.
    expect(prompt.indexOf('@alice: Same')).toBeLessThan(prompt.indexOf('please fix this'));
    expect(prompt).not.toMatch(/@alice: please fix this/);

    // The text file is in the task's worktree, ignored by git, so the task's commit never has it.
    const worktrees = execFileSync('git', ['worktree', 'list', '--porcelain'], {
      cwd: system.projectDir,
      encoding: 'utf8',
    })
      .split('\n')
      .filter((l) => l.startsWith('worktree '))
      .map((l) => l.slice('worktree '.length));
    const own = worktrees.find((w) => w.includes(task.id));
    expect(own).toBeDefined();
    expect(readFileSync(path.join(own ?? '', '.bematic', 'attachments', 'error.log'), 'utf8')).toContain(
      'TypeError',
    );
    expect(execFileSync('git', ['status', '--porcelain'], { cwd: own, encoding: 'utf8' })).toBe('');

    // The downloads used the bot token; the skipped file is named in the thread with the reason.
    expect(system.emulator.calls('files-pri').length).toBeGreaterThanOrEqual(2);
    const thread = await readThread(system, root.ts);
    const note = thread.find((m) => m.isBot && m.readable.includes('Not given to Claude'));
    expect(note?.readable).toMatch(/huge\.png \(513 KB\): over the 512 KB limit per file/);
    expect(thread.filter((m) => m.ts === mention.ts)).toHaveLength(1);
  });

  it('a mention in one of our own threads does not repeat the thread as context', async () => {
    const first = nextTerminal(system);
    system.model.setScript([turn.text('First.')]);
    const top = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> explain the login flow`,
    });
    await first;
    system.model.setScript([turn.text('Second.')]);
    const second = nextTerminal(system);
    await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      threadTs: top.ts,
      text: `<@${system.emulator.botUserId}> explain the logout flow too`,
    });
    await second;
    const asked = JSON.stringify(system.model.mainLoopRequests().at(-1)?.body ?? {});
    expect(asked).toContain('explain the logout flow too');
    expect(asked).not.toContain('Earlier messages in the Slack thread');
  });
});
