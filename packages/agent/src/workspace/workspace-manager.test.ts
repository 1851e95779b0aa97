import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TaskSubmit } from '@bematic/protocol';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { GitError } from './git.js';
import {
  commitMessage,
  errorText,
  WorkspaceError,
  WorkspaceManager,
  WorkTreeRoots,
} from './workspace-manager.js';

const base = realpathSync(mkdtempSync(path.join(tmpdir(), 'bematic-ws-')));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const sh = (cwd: string, ...args: string[]): string =>
  execFileSync('git', ['-c', 'user.name=dev', '-c', 'user.email=dev@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();

let n = 0;
function repo(): string {
  const dir = path.join(base, `repo-${n++}`);
  mkdirSync(dir);
  sh(dir, 'init', '-q', '-b', 'main');
  writeFileSync(path.join(dir, 'auth.ts'), 'export const ok = (p: string) => p === p;\n');
  sh(dir, 'add', '.');
  sh(dir, 'commit', '-q', '-m', 'init');
  return dir;
}

const task = (over: Partial<TaskSubmit> = {}): TaskSubmit => ({
  taskId: `task_${n++}`,
  attempt: 1,
  projectId: 'proj_1',
  localPath: '/unused',
  botName: 'coder',
  command: 'fix',
  prompt: 'fix the login bug in auth.ts\nmore detail',
  systemPrompt: '',
  model: 'm',
  allowedTools: ['Read', 'Edit', 'Write', 'Bash'],
  priority: 'normal',
  ...over,
});

describe('WorkspaceManager', () => {
  let wtDir: string;
  let ws: WorkspaceManager;
  beforeEach(() => {
    wtDir = path.join(base, `worktrees-${n++}`);
    ws = new WorkspaceManager({ worktreeDir: wtDir, branchPrefix: 'bematic/' });
  });

  it('gives a writing task its own worktree and branch, commits its change, and leaves the checkout alone', async () => {
    const dir = repo();
    const head = sh(dir, 'rev-parse', 'HEAD');
    const t = task();
    const plan = await ws.plan(t, dir);
    expect(plan).toMatchObject({ mode: 'worktree', lane: `worktree:${t.taskId}` });
    const w = await ws.open(t, plan);
    expect(w.cwd).toBe(path.join(wtDir, t.taskId));
    expect(w.branch).toBe(`bematic/${t.taskId}`);
    expect(w.base).toBe('main');
    writeFileSync(path.join(w.cwd, 'auth.ts'), 'export const ok = (p: string) => p === SECRET;\n');
    writeFileSync(path.join(w.cwd, 'new.ts'), 'a\nb\n');
    const report = await ws.close(t, w);

    expect(report).toMatchObject({
      mode: 'worktree',
      branch: `bematic/${t.taskId}`,
      base: 'main',
      baseCommit: head,
    });
    expect(report.commit).toBe(sh(dir, 'rev-parse', `bematic/${t.taskId}`));
    expect(report.files).toEqual([
      { path: 'auth.ts', added: 1, removed: 1, binary: false },
      { path: 'new.ts', added: 2, removed: 0, binary: false },
    ]);
    expect(sh(dir, 'log', '-1', '--format=%an|%s|%b', report.commit!)).toBe(
      `Bematic|fix the login bug in auth.ts|Bematic-Task: ${t.taskId}`,
    );
    expect(sh(dir, 'status', '--porcelain')).toBe('');
    expect(sh(dir, 'rev-parse', 'HEAD')).toBe(head);
    expect(sh(dir, 'symbolic-ref', '--short', 'HEAD')).toBe('main');
    expect(readFileSync(path.join(dir, 'auth.ts'), 'utf8')).toContain('p === p');
  });

  it('commits nothing when nothing changed', async () => {
    const dir = repo();
    const t = task();
    const w = await ws.open(t, await ws.plan(t, dir));
    const report = await ws.close(t, w);
    expect(report.commit).toBeUndefined();
    expect(report.files).toEqual([]);
    expect(sh(dir, 'rev-parse', `bematic/${t.taskId}`)).toBe(sh(dir, 'rev-parse', 'HEAD'));
  });

  it('a follow-up continues on the same branch with a second commit', async () => {
    const dir = repo();
    const first = task();
    const w1 = await ws.open(first, await ws.plan(first, dir));
    writeFileSync(path.join(w1.cwd, 'a.ts'), '1\n');
    const r1 = await ws.close(first, w1);
    const reply = task({ workspace: { continueFrom: first.taskId } });
    const plan = await ws.plan(reply, dir);
    expect(plan.lane).toBe(`worktree:${first.taskId}`);
    const w2 = await ws.open(reply, plan);
    expect(w2.cwd).toBe(w1.cwd);
    writeFileSync(path.join(w2.cwd, 'a.ts'), '1\n2\n');
    const r2 = await ws.close(reply, w2);
    expect(r2.branch).toBe(r1.branch);
    expect(r2.ownerTaskId).toBe(first.taskId);
    expect(r2.files).toEqual([{ path: 'a.ts', added: 1, removed: 0, binary: false }]);
    expect(sh(dir, 'rev-list', '--count', `main..${r1.branch}`)).toBe('2');
    expect(sh(dir, 'rev-parse', `${r2.commit}^`)).toBe(r1.commit);
  });

  it('read-only tasks run in the checkout without a worktree; a non-git project works in place', async () => {
    const dir = repo();
    const reader = task({ allowedTools: ['Read', 'Glob', 'Grep'] });
    const plan = await ws.plan(reader, dir);
    expect(plan).toMatchObject({ mode: 'read-only', lane: `read:${reader.taskId}` });
    expect((await ws.open(reader, plan)).cwd).toBe(dir);

    const plain = path.join(base, `plain-${n++}`);
    mkdirSync(plain);
    const writer = task();
    const inPlace = await ws.plan(writer, plain);
    expect(inPlace).toMatchObject({ mode: 'in-place', lane: `dir:${plain}` });
    const w = await ws.open(writer, inPlace);
    expect(w.cwd).toBe(plain);
    expect((await ws.close(writer, w)).notices).toEqual(['NOT_A_GIT_REPO']);
  });

  it('says when the checkout was dirty or its HEAD moved, and refuses an unknown base', async () => {
    const dir = repo();
    writeFileSync(path.join(dir, 'wip.ts'), 'uncommitted\n');
    const t = task();
    const w = await ws.open(t, await ws.plan(t, dir));
    expect(w.notices).toEqual(['BASE_DIRTY']);
    expect(existsSync(path.join(w.cwd, 'wip.ts'))).toBe(false);
    sh(dir, 'add', 'wip.ts');
    sh(dir, 'commit', '-q', '-m', 'meanwhile');
    const report = await ws.close(t, w);
    expect(report.notices).toEqual(['BASE_DIRTY', 'HEAD_MOVED']);
    expect(report.dirtyFiles).toBe(1);

    const bad = task({ workspace: { base: 'no-such-branch' } });
    await expect(ws.open(bad, await ws.plan(bad, dir))).rejects.toThrow(WorkspaceError);
    await expect(ws.open(bad, await ws.plan(bad, dir))).rejects.toThrow(/no-such-branch/);
  });

  it('starts from --base when given', async () => {
    const dir = repo();
    const first = sh(dir, 'rev-parse', 'HEAD');
    sh(dir, 'branch', 'release');
    writeFileSync(path.join(dir, 'later.ts'), 'x\n');
    sh(dir, 'add', '.');
    sh(dir, 'commit', '-q', '-m', 'later');
    const t = task({ workspace: { base: 'release' } });
    const w = await ws.open(t, await ws.plan(t, dir));
    expect(w).toMatchObject({ base: 'release', baseCommit: first });
    expect(existsSync(path.join(w.cwd, 'later.ts'))).toBe(false);
  });

  it('works for a project that is a sub-directory of its repository', async () => {
    const dir = repo();
    mkdirSync(path.join(dir, 'packages', 'web'), { recursive: true });
    writeFileSync(path.join(dir, 'packages', 'web', 'index.ts'), 'x\n');
    sh(dir, 'add', '.');
    sh(dir, 'commit', '-q', '-m', 'web');
    const t = task();
    const w = await ws.open(t, await ws.plan(t, path.join(dir, 'packages', 'web')));
    expect(w.cwd).toBe(path.join(wtDir, t.taskId, 'packages', 'web'));
    expect(readFileSync(path.join(w.cwd, 'index.ts'), 'utf8')).toBe('x\n');
  });

  it('discard removes worktree and branch; prune removes directories no repository knows', async () => {
    const dir = repo();
    const t = task();
    const w = await ws.open(t, await ws.plan(t, dir));
    writeFileSync(path.join(w.cwd, 'a.ts'), '1\n');
    await ws.close(t, w);
    expect(await ws.discard(t.taskId, dir)).toBe(true);
    expect(existsSync(w.cwd)).toBe(false);
    expect(sh(dir, 'branch', '--list', `bematic/${t.taskId}`)).toBe('');
    expect(sh(dir, 'worktree', 'list').split('\n')).toHaveLength(1);
    expect(await ws.discard(t.taskId, dir)).toBe(false);

    const kept = task();
    const wk = await ws.open(kept, await ws.plan(kept, dir));
    mkdirSync(path.join(wtDir, 'task_crashed'));
    const { removed } = await ws.prune();
    expect(removed).toEqual([path.join(wtDir, 'task_crashed')]);
    expect(existsSync(wk.cwd)).toBe(true);
  });

  it('tasks of one repository opened at once each get their worktree, one git worktree command at a time', async () => {
    const dir = repo();
    const tasks = Array.from({ length: 16 }, () => task());
    // git's worktree commands are not safe side by side ("failed to read .git/worktrees/<id>/commondir").
    const { result: opened, overlaps } = await watchingGit(() =>
      Promise.allSettled(tasks.map(async (t) => ws.open(t, await ws.plan(t, dir)))),
    );
    expect(opened.filter((o) => o.status === 'rejected').map((o) => String(o.reason))).toEqual([]);
    expect(overlaps).toBe(0);
    const listed = sh(dir, 'worktree', 'list', '--porcelain')
      .split('\n')
      .filter((l) => l.startsWith('worktree '));
    expect(listed).toHaveLength(tasks.length + 1);
  });

  it('refuses a worktree dir inside the checkout and task ids that cannot name a branch', async () => {
    const dir = repo();
    const inside = new WorkspaceManager({ worktreeDir: path.join(dir, '.wt'), branchPrefix: 'b/' });
    const t = task();
    await expect(inside.open(t, await inside.plan(t, dir))).rejects.toThrow(/inside the checkout/);
    const evil = task({ taskId: '../../etc' });
    await expect(ws.open(evil, await ws.plan(evil, dir))).rejects.toThrow(/cannot name a branch/);
  });

  it('keeps credentials in remote URLs out of error texts', () => {
    const err = new GitError(
      ['push'],
      "fatal: unable to access 'https://bot:ghp_secret@github.com/acme/web.git/': 403",
      128,
    );
    expect(errorText(err)).toBe("fatal: unable to access 'https://***@github.com/acme/web.git/': 403");
  });

  it('builds the commit message from the first line and the task id', () => {
    expect(commitMessage({ taskId: 't1', prompt: '  add tests\nand more' })).toBe(
      'add tests\n\nBematic-Task: t1\n',
    );
    expect(commitMessage({ taskId: 't1', prompt: 'x'.repeat(100) }).split('\n')[0]).toHaveLength(72);
  });
});

/** Runs `fn` with no git reachable: any git the code spawns fails (and rev-parse answers "not a repository"). */
function withoutGit<T>(fn: () => Promise<T>): Promise<T> {
  return withPath('', fn);
}

/** Runs `fn` with PATH set to `value`, restored afterwards. */
async function withPath<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = value;
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}

/**
 * Runs `fn` with a `git` first on PATH that runs the real one, counting every git command and the
 * `git worktree` commands that started while another was still running.
 */
async function watchingGit<T>(fn: () => Promise<T>): Promise<{ result: T; calls: number; overlaps: number }> {
  const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  const bin = mkdtempSync(path.join(base, 'bin-'));
  const busy = path.join(bin, 'busy');
  const calls = path.join(bin, 'calls');
  const overlaps = path.join(bin, 'overlaps');
  writeFileSync(
    path.join(bin, 'git'),
    [
      '#!/bin/sh',
      `echo call >> "${calls}"`,
      `case " $* " in *" worktree "*) ;; *) exec "${realGit}" "$@" ;; esac`,
      `if ! mkdir "${busy}" 2>/dev/null; then echo overlap >> "${overlaps}"; exec "${realGit}" "$@"; fi`,
      `"${realGit}" "$@"; rc=$?; rmdir "${busy}"; exit $rc`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const lines = (file: string) =>
    existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
  const result = await withPath(`${bin}${path.delimiter}${process.env.PATH ?? ''}`, fn);
  return { result, calls: lines(calls), overlaps: lines(overlaps) };
}

describe('WorkTreeRoots', () => {
  it('asks git once for a project whose tasks arrive together', async () => {
    const dir = repo();
    const roots = new WorkTreeRoots();
    const { result, calls } = await watchingGit(() =>
      Promise.all(Array.from({ length: 20 }, () => roots.get(dir))),
    );
    expect(result).toEqual(Array.from({ length: 20 }, () => dir));
    expect(calls).toBe(1);
    // Answered from the memo afterwards, and a look-up that is forgotten is asked again.
    expect((await watchingGit(() => roots.get(dir))).calls).toBe(0);
    roots.forget(dir);
    expect((await watchingGit(() => roots.get(dir))).calls).toBe(1);
  });

  it('answers the second task of a project without spawning git', async () => {
    const dir = repo();
    const ws = new WorkspaceManager({ worktreeDir: path.join(base, `worktrees-${n++}`), branchPrefix: 'b/' });
    expect((await ws.plan(task(), dir)).repoRoot).toBe(dir);
    // With git unreachable a real look-up would answer "not a repository" (in-place); the memo answers.
    const second = await withoutGit(() => ws.plan(task(), dir));
    expect(second).toMatchObject({ mode: 'worktree', repoRoot: dir });
    // A fresh memo proves the same call does reach git.
    const fresh = new WorkspaceManager({
      worktreeDir: path.join(base, `worktrees-${n++}`),
      branchPrefix: 'b/',
    });
    expect((await withoutGit(() => fresh.plan(task(), dir))).mode).toBe('in-place');
  });

  it('asks git again when .git moves away, is re-created, or the project becomes a repository itself', async () => {
    const dir = repo();
    const sub = path.join(dir, 'pkg');
    mkdirSync(sub);
    const roots = new WorkTreeRoots();
    expect(await roots.get(dir)).toBe(dir);
    expect(await roots.get(sub)).toBe(dir);

    renameSync(path.join(dir, '.git'), path.join(base, `moved-git-${n++}`));
    expect(await roots.get(dir)).toBeUndefined();
    expect(await roots.get(sub)).toBeUndefined();

    sh(dir, 'init', '-q', '-b', 'main');
    expect(await roots.get(dir)).toBe(dir);
    expect(await withoutGit(() => roots.get(dir))).toBe(dir);
    // .git replaced by a file (a linked worktree's pointer): a different entry, so git is asked again.
    rmSync(path.join(dir, '.git'), { recursive: true, force: true });
    writeFileSync(path.join(dir, '.git'), 'gitdir: /nonexistent\n');
    expect(await roots.get(dir)).toBeUndefined();
    rmSync(path.join(dir, '.git'), { force: true });
    sh(dir, 'init', '-q', '-b', 'main');
    expect(await roots.get(dir)).toBe(dir);

    expect(await roots.get(sub)).toBe(dir);
    sh(sub, 'init', '-q', '-b', 'main');
    expect(await roots.get(sub)).toBe(sub);
  });

  it('forgets a project whose worktree could not be opened', async () => {
    const dir = repo();
    const ws = new WorkspaceManager({ worktreeDir: path.join(base, `worktrees-${n++}`), branchPrefix: 'b/' });
    const bad = task({ workspace: { base: 'no-such-ref' } });
    const plan = await ws.plan(bad, dir);
    await expect(ws.open(bad, plan)).rejects.toThrow(WorkspaceError);
    expect((await withoutGit(() => ws.plan(task(), dir))).mode).toBe('in-place');
  });
});
