import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAX_DIFF_BYTES } from '@bematic/protocol';
import { type GitHubEmulator, startGitHubEmulator } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PathValidator } from '../security/path-validator.js';
import { parseGitHubRemote } from './github.js';
import { WorkspaceActions } from './workspace-actions.js';
import { WorkspaceManager } from './workspace-manager.js';

describe('parseGitHubRemote', () => {
  it.each([
    ['https://github.com/acme/webapp.git', 'acme', 'webapp'],
    ['https://github.com/acme/webapp', 'acme', 'webapp'],
    ['git@github.com:acme/web.app.git', 'acme', 'web.app'],
    ['ssh://git@github.com/acme/webapp.git', 'acme', 'webapp'],
    ['https://user@github.com/acme/webapp.git/', 'acme', 'webapp'],
  ])('%s → %s/%s', (url, owner, repo) => {
    expect(parseGitHubRemote(url)).toMatchObject({ owner, repo });
  });

  it('accepts the GitHub Enterprise host of GITHUB_API_URL and nothing else', () => {
    expect(parseGitHubRemote('git@ghe.corp:team/app.git', 'https://ghe.corp/api/v3')).toMatchObject({
      host: 'ghe.corp',
      owner: 'team',
      repo: 'app',
    });
    expect(parseGitHubRemote('https://gitlab.com/acme/webapp.git')).toBeUndefined();
    expect(parseGitHubRemote('/srv/git/webapp.git')).toBeUndefined();
    expect(parseGitHubRemote('https://github.com/only-owner')).toBeUndefined();
    expect(parseGitHubRemote('file:///srv/git/webapp.git')).toBeUndefined();
  });
});

describe('WorkspaceActions', () => {
  const base = realpathSync(mkdtempSync(path.join(tmpdir(), 'bematic-actions-')));
  let github: GitHubEmulator;
  const token = 'ghp_actions_test';
  afterAll(async () => {
    await github?.close();
    rmSync(base, { recursive: true, force: true });
  });
  beforeAll(async () => {
    github = await startGitHubEmulator({ token });
  });

  const sh = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=d', '-c', 'user.email=d@e', ...args], {
      cwd,
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();

  let n = 0;
  async function taskBranch(remote?: { url: string; pushurl?: string }, content = 'a\n') {
    const dir = path.join(base, `repo-${n++}`);
    mkdirSync(dir);
    sh(dir, 'init', '-q', '-b', 'main');
    sh(dir, 'commit', '-q', '--allow-empty', '-m', 'init');
    if (remote) {
      sh(dir, 'remote', 'add', 'origin', remote.url);
      if (remote.pushurl) sh(dir, 'config', 'remote.origin.pushurl', remote.pushurl);
    }
    const workspaces = new WorkspaceManager({
      worktreeDir: path.join(base, `wt-${n}`),
      branchPrefix: 'bematic/',
    });
    const task = {
      taskId: `t${n}`,
      attempt: 1,
      projectId: 'p',
      localPath: dir,
      botName: 'coder',
      command: 'fix',
      prompt: 'add a file',
      systemPrompt: '',
      model: 'm',
      allowedTools: ['Write'],
      priority: 'normal' as const,
    };
    const ws = await workspaces.open(task, await workspaces.plan(task, dir));
    writeFileSync(path.join(ws.cwd, 'a.txt'), content);
    await workspaces.close(task, ws);
    const actions = new WorkspaceActions({
      workspaces,
      validatePath: (p) => new PathValidator([base]).validate(p),
      github: { apiUrl: github.url, token },
    });
    const command = (action: 'create_pr' | 'show_diff' | 'discard') => ({
      requestId: `r${n}`,
      taskId: task.taskId,
      projectId: 'p',
      localPath: dir,
      action,
      pullRequest: { title: 'Add a file', body: 'body' },
    });
    return { dir, actions, command, branch: `bematic/${task.taskId}` };
  }

  it('answers NO_REMOTE without an origin, and pushes only (no PR) when origin is not on GitHub', async () => {
    const none = await taskBranch();
    expect(await none.actions.handle(none.command('create_pr'))).toMatchObject({ code: 'NO_REMOTE' });

    const bare = path.join(base, 'plain.git');
    execFileSync('git', ['init', '-q', '--bare', bare]);
    const plain = await taskBranch({ url: bare });
    const result = await plain.actions.handle(plain.command('create_pr'));
    expect(result).toMatchObject({
      code: 'PUSHED_NO_PR',
      branch: plain.branch,
      detail: 'origin is not a GitHub repository',
    });
    expect(sh(bare, 'rev-parse', plain.branch)).toBe(sh(plain.dir, 'rev-parse', plain.branch));
    expect(github.requests).toHaveLength(0);
  });

  it('opens the pull request once; asking again returns the open one', async () => {
    const bare = path.join(base, 'gh.git');
    execFileSync('git', ['init', '-q', '--bare', bare]);
    const repo = await taskBranch({ url: 'git@github.com:acme/webapp.git', pushurl: bare });
    const first = await repo.actions.handle(repo.command('create_pr'));
    expect(first).toMatchObject({
      code: 'PR_CREATED',
      pullRequestUrl: 'https://github.com/acme/webapp/pull/1',
      pullRequestNumber: 1,
    });
    const again = await repo.actions.handle(repo.command('create_pr'));
    expect(again).toMatchObject({ code: 'PR_CREATED', pullRequestNumber: 1 });
    expect(github.pullRequests()).toHaveLength(1);
    expect(github.pullRequests()[0]).toMatchObject({ head: repo.branch, base: 'main', title: 'Add a file' });
    expect(JSON.stringify(again)).not.toContain(token);
  });

  it('reports GitHub refusing a wrong token without leaking it', async () => {
    const bare = path.join(base, 'gh2.git');
    execFileSync('git', ['init', '-q', '--bare', bare]);
    const repo = await taskBranch({ url: 'https://github.com/acme/other.git', pushurl: bare });
    const wrong = new WorkspaceActions({
      workspaces: new WorkspaceManager({ worktreeDir: path.join(base, `wt-${n}`), branchPrefix: 'bematic/' }),
      validatePath: (p) => new PathValidator([base]).validate(p),
      github: { apiUrl: github.url, token: 'ghp_wrong_secret' },
    });
    const result = await wrong.handle(repo.command('create_pr'));
    expect(result).toMatchObject({ code: 'GITHUB_ERROR' });
    expect(result.detail).toMatch(/401/);
    expect(JSON.stringify(result)).not.toContain('ghp_wrong_secret');
  });

  it('sends the patch, cut at the size limit with its full size', async () => {
    const small = await taskBranch();
    const diff = await small.actions.handle(small.command('show_diff'));
    expect(diff).toMatchObject({ code: 'DIFF', truncated: false });
    expect(diff.patch).toContain('+a');

    const big = await taskBranch(undefined, `${'x'.repeat(99)}\n`.repeat(4000));
    const cut = await big.actions.handle(big.command('show_diff'));
    expect(cut).toMatchObject({ code: 'DIFF', truncated: true });
    expect(Buffer.byteLength(cut.patch ?? '')).toBeLessThanOrEqual(MAX_DIFF_BYTES);
    expect(cut.patchBytes).toBeGreaterThan(400_000);
  });
});
