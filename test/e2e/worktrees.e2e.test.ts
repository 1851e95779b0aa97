import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type GitHubEmulator,
  type MessageView,
  startGitHubEmulator,
  startTestSystem,
  type TestSystem,
  turn,
} from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buttonValue, nextTerminal, readThread } from './support.js';

const TOKEN = 'ghp_emulated_token_for_tests';

/**
 * Work isolation end to end: Slack emulator → Bolt → cloud → agent → real
 * Claude Code in its own git worktree → commits on a task branch → Create PR
 * pushes to a bare "origin" and opens a pull request on the GitHub emulator.
 */
describe('a git worktree and branch per task', () => {
  let system: TestSystem;
  let github: GitHubEmulator;
  let bare: string;
  let git: (...args: string[]) => string;
  let head: string;

  beforeAll(async () => {
    let bareRepo = '';
    github = await startGitHubEmulator({
      token: TOKEN,
      branchExists: (_owner, _repo, branch) => {
        try {
          execFileSync('git', ['rev-parse', '--verify', '-q', `refs/heads/${branch}`], { cwd: bareRepo });
          return true;
        } catch {
          return false;
        }
      },
    });
    system = await startTestSystem({
      settings: { BEMATIC_PROGRESS_INTERVAL_MS: '200' },
      agentSettings: { GITHUB_API_URL: github.url, GITHUB_TOKEN: TOKEN },
    });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
    git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=dev', '-c', 'user.email=dev@example.com', ...args], {
        cwd: system.projectDir,
        encoding: 'utf8',
        stdio: 'pipe',
      }).trim();
    bare = path.join(system.root, 'origin.git');
    bareRepo = bare;
    execFileSync('git', ['init', '-q', '--bare', bare]);
    git('checkout', '-q', '-b', 'main');
    await writeFile(path.join(system.projectDir, 'auth.ts'), 'export const ok = (p: string) => p === p;\n');
    await writeFile(
      path.join(system.projectDir, 'CLAUDE.md'),
      'House rule: tabs, never spaces (marker-7f3a).\n',
    );
    git('add', 'auth.ts', 'CLAUDE.md');
    git('commit', '-q', '-m', 'auth');
    git('remote', 'add', 'origin', 'https://github.com/acme/webapp.git');
    git('config', 'remote.origin.pushurl', bare);
    git('push', '-q', 'origin', 'main');
    head = git('rev-parse', 'HEAD');
  });
  afterAll(async () => {
    await system?.close();
    await github?.close();
  });

  it('runs two writing tasks of one project at once, each on its own branch with its own commit', async () => {
    system.model.setConversations({
      'write one.ts': [
        turn.toolUse('Write', { file_path: 'one.ts', content: 'export const one = 1;\n' }),
        turn.text('Wrote one.ts.'),
      ],
      'write two.ts': [
        turn.toolUse('Write', {
          file_path: 'two.ts',
          content: 'export const two = 2;\nexport const dos = 2;\n',
        }),
        turn.text('Wrote two.ts.'),
      ],
    });
    // Both first model requests must arrive before either is answered: the tasks really overlap.
    system.model.hold();
    const doneOne = nextTerminal(system, (t) => t.prompt.includes('one.ts'));
    const doneTwo = nextTerminal(system, (t) => t.prompt.includes('two.ts'));
    const [m1, m2] = await Promise.all([
      system.emulator.mention({ user: 'U0ALICE', channel: system.channel, text: 'code write one.ts' }),
      system.emulator.mention({ user: 'U0ALICE', channel: system.channel, text: 'code write two.ts' }),
    ]);
    const [r1, r2] = await Promise.all([
      system.model.waitForRequest((r) => r.conversation === 'write one.ts'),
      system.model.waitForRequest((r) => r.conversation === 'write two.ts'),
    ]);
    expect(r1.answeredAt).toBeUndefined();
    expect(r2.answeredAt).toBeUndefined();
    // The repository's own CLAUDE.md (read from the task's worktree) reached Claude Code.
    expect(JSON.stringify([r1.messages, r1.system])).toContain('marker-7f3a');
    system.model.release();
    const [one, two] = [await doneOne, await doneTwo];
    expect(one.event).toBe('task.completed');
    expect(two.event).toBe('task.completed');

    const a = (await system.cloud.repos.tasks.findById(one.task.id))!;
    const b = (await system.cloud.repos.tasks.findById(two.task.id))!;
    expect(a.workspace).toMatchObject({
      mode: 'worktree',
      branch: `bematic/${a.id}`,
      base: 'main',
      baseCommit: head,
      files: [{ path: 'one.ts', added: 1, removed: 0, binary: false }],
    });
    expect(b.workspace?.files).toEqual([{ path: 'two.ts', added: 2, removed: 0, binary: false }]);
    expect(git('show', `bematic/${a.id}:one.ts`)).toBe('export const one = 1;');
    expect(git('log', '-1', '--format=%an %s', `bematic/${b.id}`)).toBe('Bematic write two.ts');
    expect(git('rev-parse', `bematic/${a.id}^`)).toBe(head);
    expect(() => git('show', `bematic/${a.id}:two.ts`)).toThrow();
    // The person's own checkout: untouched.
    expect(git('status', '--porcelain')).toBe('');
    expect(git('rev-parse', 'HEAD')).toBe(head);
    expect(existsSync(path.join(system.projectDir, 'one.ts'))).toBe(false);

    // The completion block shows branch, base, commit and the diff stat, with the three buttons.
    const thread = await readThread(system, m1.ts);
    const block = completion(thread)!;
    expect(block.readable).toContain(`bematic/${a.id}`);
    expect(block.readable).toContain('one.ts` +1 −0');
    expect(block.readable).toContain(a.workspace!.commit!.slice(0, 7));
    expect(buttonValue(block, 'workspace_pr')).toBe(a.id);
    expect(buttonValue(block, 'workspace_diff')).toBe(a.id);
    expect(buttonValue(block, 'workspace_discard')).toBe(a.id);
    expect(completion(await readThread(system, m2.ts))!.readable).toContain(`bematic/${b.id}`);
  });

  it('a thread reply continues on the same branch with a second commit, and Create PR opens one pull request', async () => {
    const first = (await system.cloud.repos.tasks.list({ status: 'completed' })).find((t) =>
      t.prompt.includes('one.ts'),
    )!;
    const branch = `bematic/${first.id}`;
    system.model.setConversations({});
    system.model.setScript([
      turn.toolUse('Edit', { file_path: 'one.ts', old_string: 'one = 1', new_string: 'one = 1.0' }),
      turn.text('Made it a float.'),
    ]);
    const done = nextTerminal(system, (t) => t.id !== first.id && t.threadTs === first.threadTs);
    await system.emulator.message({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'make one a float',
      threadTs: first.threadTs!,
    });
    const { task: reply } = await done;
    const stored = (await system.cloud.repos.tasks.findById(reply.id))!;
    expect(stored.submission.workspace).toEqual({ continueFrom: first.id });
    expect(stored.workspace).toMatchObject({ branch, ownerTaskId: first.id });
    expect(git('rev-list', '--count', `main..${branch}`)).toBe('2');
    expect(git('show', `${branch}:one.ts`)).toBe('export const one = 1.0;');
    expect(git('status', '--porcelain')).toBe('');

    // Show diff: the patch arrives in the thread as a file.
    const thread = await readThread(system, first.threadTs!);
    const block = completion(thread)!;
    await system.emulator.clickButton({
      user: 'U0ALICE',
      channel: system.channel,
      messageTs: block.ts,
      actionId: 'workspace_diff',
      value: reply.id,
    });
    const withFile = await system.emulator.waitFor(() =>
      system.emulator.thread(system.channel, first.threadTs!).find((m) => m.files.length > 0),
    );
    const patch = system.emulator.file(withFile.files[0]!.id)!.content!.toString('utf8');
    expect(patch).toContain('+export const one = 1.0;');
    expect(withFile.readable).toContain(branch);

    // Create PR: pushed to the bare origin (pushurl), one POST …/pulls with head, base and title.
    await system.emulator.clickButton({
      user: 'U0ALICE',
      channel: system.channel,
      messageTs: block.ts,
      actionId: 'workspace_pr',
      value: reply.id,
    });
    const prMessage = await system.emulator.waitFor(() =>
      system.emulator.thread(system.channel, first.threadTs!).find((m) => /Pull request #1/.test(m.readable)),
    );
    expect(prMessage.readable).toContain('https://github.com/acme/webapp/pull/1');
    expect(execFileSync('git', ['rev-parse', branch], { cwd: bare, encoding: 'utf8' }).trim()).toBe(
      git('rev-parse', branch),
    );
    const posts = github.requests.filter((r) => r.method === 'POST' && r.path === '/repos/acme/webapp/pulls');
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatchObject({
      authorized: true,
      body: { head: branch, base: 'main', title: 'write one.ts' },
    });
    const body = (posts[0]!.body as { body: string }).body;
    expect(body).toContain('make one a float');
    expect(body).toContain('`one.ts` +2 −1');
    expect(body).toContain(
      `https://slack.com/archives/${system.channel}/p${first.threadTs!.replace('.', '')}`,
    );
    expect((await system.cloud.repos.tasks.findById(first.id))!.pullRequestUrl).toBe(
      'https://github.com/acme/webapp/pull/1',
    );
    // The token stayed with the agent: not in Slack, not in the database, not offered to Claude Code.
    const everything = JSON.stringify(system.emulator.thread(system.channel, first.threadTs!));
    expect(everything).not.toContain(TOKEN);
    expect(JSON.stringify(await system.cloud.repos.audit.list({ resourceId: reply.id }))).not.toContain(
      TOKEN,
    );
    expect(JSON.stringify(system.model.requests)).not.toContain(TOKEN);
  });

  it('archiving every task of a thread removes its worktree and branch on the agent', async () => {
    const first = (await system.cloud.repos.tasks.list({ status: 'completed' })).find((t) =>
      t.prompt.includes('one.ts'),
    )!;
    const thread = (await system.cloud.repos.tasks.list({ projectId: first.projectId })).filter(
      (t) => t.threadTs === first.threadTs,
    );
    expect(thread).toHaveLength(2);
    const worktree = path.join(system.root, 'worktrees', first.id);
    expect(existsSync(worktree)).toBe(true);
    await system.cloud.retention.archive(first.id, 'test', 'U0ALICE');
    // One task of the thread is left: its branch stays.
    expect(existsSync(worktree)).toBe(true);
    const reply = thread.find((t) => t.id !== first.id)!;
    await system.cloud.retention.archive(reply.id, 'test', 'U0ALICE');
    // The branch goes last.
    await expect.poll(() => git('branch', '--list', `bematic/${first.id}`), { timeout: 20_000 }).toBe('');
    expect(existsSync(worktree)).toBe(false);
    // The pushed branch and the pull request stay on the remote.
    expect(
      execFileSync('git', ['branch', '--list', `bematic/${first.id}`], { cwd: bare, encoding: 'utf8' }),
    ).toContain(first.id);
  });

  it('/bm discard removes the worktree and the branch', async () => {
    const two = (await system.cloud.repos.tasks.list({ status: 'completed' })).find((t) =>
      t.prompt.includes('two.ts'),
    )!;
    const branch = `bematic/${two.id}`;
    const worktree = path.join(system.root, 'worktrees', two.id);
    expect(existsSync(worktree)).toBe(true);
    await system.emulator.slashCommand({
      user: 'U0ALICE',
      channel: system.channel,
      text: `discard ${two.id}`,
    });
    await system.emulator.waitFor(() =>
      system.emulator.thread(system.channel, two.threadTs!).find((m) => /Discarded/.test(m.readable)),
    );
    expect(existsSync(worktree)).toBe(false);
    expect(git('branch', '--list', branch)).toBe('');
    const audit = await system.cloud.repos.audit.list({ resourceId: two.id });
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['workspace.discard']));
  });

  it('a dirty checkout is pointed out in the thread, and a base that does not exist gets a clear error', async () => {
    await writeFile(path.join(system.projectDir, 'wip.ts'), 'not committed\n');
    system.model.setScript([turn.text('Looked around.')]);
    const done = nextTerminal(system, (t) => t.prompt.includes('look around'));
    const m = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'code look around',
    });
    expect((await done).event).toBe('task.completed');
    const block = completion(await readThread(system, m.ts))!;
    expect(block.readable).toMatch(
      /uncommitted changes in 1 file; this branch starts from the last commit of `?main/,
    );
    expect(block.readable).toContain('no changes to commit');
    expect(await readFile(path.join(system.projectDir, 'wip.ts'), 'utf8')).toBe('not committed\n');

    const failed = nextTerminal(system, (t) => t.prompt.includes('on a ghost'));
    const m2 = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'code fix it on a ghost --base no-such-branch',
    });
    const { event, task } = await failed;
    expect(event).toBe('task.failed');
    expect((await system.cloud.repos.tasks.findById(task.id))!.errorCode).toBe('WORKSPACE_FAILED');
    const thread = await readThread(system, m2.ts);
    expect(thread.map((x) => x.readable).join('\n')).toContain('The base `no-such-branch` is not a commit');
  });
});

describe('a project that is not a git repository', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem({ git: false, settings: { BEMATIC_PROGRESS_INTERVAL_MS: '200' } });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
  });
  afterAll(() => system?.close());

  it('works in place, says so once in the thread, and has no branch buttons', async () => {
    system.model.setScript([
      turn.toolUse('Write', { file_path: 'notes.md', content: '# Notes\n' }),
      turn.text('Wrote the notes.'),
    ]);
    const done = nextTerminal(system);
    const m = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'code write notes.md',
    });
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(await readFile(path.join(system.projectDir, 'notes.md'), 'utf8')).toBe('# Notes\n');
    const first = completion(await readThread(system, m.ts))!;
    expect(first.readable).toContain('not a git repository');
    expect(buttonValue(first, 'workspace_pr')).toBeUndefined();
    expect((await system.cloud.repos.tasks.findById(task.id))!.workspace).toMatchObject({
      mode: 'in-place',
      notices: ['NOT_A_GIT_REPO'],
    });

    system.model.setScript([turn.text('Nothing else to do.')]);
    const again = nextTerminal(system, (t) => t.id !== task.id);
    await system.emulator.message({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'anything else?',
      threadTs: m.ts,
    });
    await again;
    const thread = await readThread(system, m.ts);
    expect(thread.filter((x) => x.readable.includes('not a git repository'))).toHaveLength(1);

    // /bm pr on it is answered plainly.
    const before = system.emulator.ephemerals('U0ALICE').length;
    await system.emulator.slashCommand({ user: 'U0ALICE', channel: system.channel, text: `pr ${task.id}` });
    const answer = await system.emulator.waitFor(() => system.emulator.ephemerals('U0ALICE')[before]);
    expect(JSON.stringify(answer)).toContain('has no branch: its project is not a git repository');
  });
});

function completion(thread: MessageView[]) {
  return [...thread].reverse().find((m) => /Task completed/.test(m.readable));
}
