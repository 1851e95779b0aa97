import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal, reactionNames, readThread } from './support.js';

/**
 * The seed's happy path, steps 1–14, through real parts only: Slack emulator →
 * Bolt (Socket Mode) → middleware → command service → database → WebSocket →
 * agent → queue processor → real Claude Agent SDK → scripted model → file on
 * disk → stream back → database → Slack thread.
 */
describe('happy path: @BematicManager code fix the login bug in auth.ts', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem({ settings: { BEMATIC_PROGRESS_INTERVAL_MS: '200' } });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
    await writeFile(path.join(system.projectDir, 'auth.ts'), 'export const ok = (p: string) => p === p;\n');
    const git = (...args: string[]) => execFileSync('git', args, { cwd: system.projectDir });
    git('add', 'auth.ts');
    git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', 'auth');
  });
  afterAll(() => system?.close());

  it('runs the task and shows started → progress → completion in the thread, with the database in step', async () => {
    system.model.setScript([
      turn.textThenTool('Looking at auth.ts.', 'Read', { file_path: 'auth.ts' }),
      turn.textThenTool('Fixing the comparison.', 'Edit', {
        file_path: 'auth.ts',
        old_string: 'p === p',
        new_string: 'p === SECRET',
      }),
      turn.text('Fixed: `ok()` compared the password with **itself**.', {
        usage: { input_tokens: 1200, output_tokens: 300, cache_read_input_tokens: 500 },
      }),
    ]);
    const done = nextTerminal(system);
    const mention = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> code fix the login bug in auth.ts`,
    });
    const { event, task } = await done;
    expect(event).toBe('task.completed');

    // Step 10: Claude Code really ran, in the task's own worktree, with the coder's prompt, model and tools;
    // the fix is committed on the task's branch and the checkout itself is untouched.
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: system.projectDir, encoding: 'utf8' });
    expect(git('show', `bematic/${task.id}:auth.ts`)).toContain('p === SECRET');
    expect(await readFile(path.join(system.projectDir, 'auth.ts'), 'utf8')).toContain('p === p');
    const main = system.model.mainLoopRequests();
    expect(main.length).toBeGreaterThanOrEqual(3);
    expect(main[0]!.model).toBe(system.config.BEMATIC_MODEL_PREMIUM);
    expect(main[0]!.tools.sort()).toEqual(['Bash', 'Edit', 'Glob', 'Grep', 'Read', 'Write']);
    expect(main[0]!.system).toContain(task.submission.systemPrompt.slice(0, 60));
    expect(JSON.stringify(main[0]!.messages)).toContain('fix the login bug in auth.ts');

    // Steps 4–5 and 13: what the database holds.
    const row = await system.cloud.repos.tasks.findById(task.id);
    expect(row).toMatchObject({
      status: 'completed',
      botName: 'coder',
      command: 'fix',
      prompt: 'fix the login bug in auth.ts',
      channelId: system.channel,
      threadTs: mention.ts,
      userId: 'U0ALICE',
      filesChanged: ['auth.ts'],
    });
    expect(row!.inputTokens).toBeGreaterThanOrEqual(1200);
    expect(row!.outputTokens).toBeGreaterThanOrEqual(300);
    expect(row!.costUsd).toBeGreaterThan(0);
    expect(row!.sessionId).toBeTruthy();
    expect(row!.completedAt).not.toBeNull();
    const sessions = await system.cloud.repos.sessions.findByTask(task.id);
    expect(sessions.map((s) => s.status)).toEqual(['completed']);
    const actions = (await system.cloud.repos.audit.list({ resourceId: task.id })).map((a) => a.action);
    expect(actions).toEqual(
      expect.arrayContaining(['task.created', 'task.submitted', 'task.started', 'task.completed']),
    );
    expect(await system.cloud.repos.offlineQueue.findByTask(task.id)).toBeUndefined();

    // Steps 6, 11, 14: what a person sees in the thread.
    const thread = await readThread(system, mention.ts);
    const [root, completion] = thread;
    expect(reactionNames(root)).toEqual(['white_check_mark']);
    // The "Task started" message was updated in place into the completion block.
    expect(completion!.edits.length).toBeGreaterThan(0);
    expect(completion!.edits[0]!.text).toMatch(/started/i);
    expect(completion!.readable, system.emulator.renderThread(system.channel, mention.ts)).toMatch(
      /Task completed/,
    );
    expect(completion!.readable).not.toMatch(/Cancel/);
    expect(completion!.readable).toContain('auth.ts');
    expect(completion!.readable).toMatch(/Tokens/);
    expect(completion!.readable).toMatch(/\$\d/);
    expect(completion!.readable).toContain('*itself*');
    // Slack is never spammed: the request and one bot message.
    expect(thread.filter((m) => m.isBot)).toHaveLength(1);

    // Metrics saw it.
    const metrics = await (await fetch(`${system.cloud.url}/metrics`)).text();
    expect(metrics).toMatch(/bematic_task_outcomes_total\{[^}]*status="completed"/);
  });

  it('a 429 storm from Slack delays the thread but never loses the final message', async () => {
    system.model.setScript([
      turn.textThenTool('Writing the changelog.', 'Write', {
        file_path: 'CHANGELOG.md',
        content: '# Changes\n',
      }),
      turn.text('Changelog written.'),
    ]);
    system.emulator.rateLimit('chat.update', { forMs: 2500, retryAfterSec: 1 });
    system.emulator.rateLimit('chat.postMessage', { count: 2, retryAfterSec: 1 });
    const done = nextTerminal(system);
    const msg = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'code write a changelog',
    });
    const { event } = await done;
    expect(event).toBe('task.completed');
    const final = await system.emulator.waitFor(
      () => system.emulator.thread(system.channel, msg.ts).find((m) => /Task completed/.test(m.readable)),
      20_000,
    );
    expect(final.readable).toContain('CHANGELOG.md');
    expect(system.emulator.calls().some((c) => c.status === 'rate_limited')).toBe(true);
    expect(system.emulator.thread(system.channel, msg.ts).filter((m) => m.isBot)).toHaveLength(1);
  });

  it('a reply in the thread continues the same Claude session', async () => {
    const completed = await system.cloud.repos.tasks.list({ status: 'completed' });
    const parent = completed.find((t) => t.prompt === 'fix the login bug in auth.ts')!;
    system.model.setScript([turn.text('Also added a test.')]);
    const done = nextTerminal(system, (t) => t.id !== parent.id);
    await system.emulator.message({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'please also add a test',
      threadTs: parent.threadTs!,
    });
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(task.submission.resumeSessionId).toBe(parent.sessionId);
    expect(task.threadTs).toBe(parent.threadTs);
    // Resuming means Claude Code sent the earlier conversation back to the model.
    const last = system.model.mainLoopRequests().at(-1)!;
    expect(JSON.stringify(last.messages)).toContain('the login bug in auth.ts');
  });
});
