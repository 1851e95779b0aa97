import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileChangeTracker, gitChangesBetween, gitStatus } from './files-changed.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('FileChangeTracker', () => {
  it('lists files of successful file-changing tool calls, relative and deduped', () => {
    const t = new FileChangeTracker('/repo');
    t.noteToolUse('1', 'Write', { file_path: '/repo/src/a.ts' });
    t.noteToolUse('2', 'Edit', { file_path: '/repo/src/a.ts' });
    t.noteToolUse('3', 'Edit', { file_path: '/repo/src/failed.ts' });
    t.noteToolUse('4', 'Read', { file_path: '/repo/src/read.ts' });
    t.noteToolResult('1', false);
    t.noteToolResult('2', false);
    t.noteToolResult('3', true);
    t.noteToolResult('4', false);
    expect(t.list()).toEqual(['src/a.ts']);
  });
});

describe('git status', () => {
  it('reports paths relative to cwd and only those that changed between snapshots', async () => {
    const repo = mkdtempSync(join(tmpdir(), 'bematic-git-'));
    dirs.push(repo);
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, stdio: 'pipe' });
    git('init', '-q');
    mkdirSync(join(repo, 'app'));
    writeFileSync(join(repo, 'app', 'tracked.txt'), 'a');
    git('add', '.');
    git('-c', 'user.email=t@e.st', '-c', 'user.name=t', 'commit', '-qm', 'init');
    writeFileSync(join(repo, 'app', 'dirty.txt'), 'before');
    const cwd = join(repo, 'app');
    const before = await gitStatus(cwd);
    writeFileSync(join(repo, 'app', 'tracked.txt'), 'b');
    writeFileSync(join(repo, 'app', 'new.txt'), 'n');
    writeFileSync(join(repo, 'outside.txt'), 'o');
    const after = await gitStatus(cwd);
    expect(gitChangesBetween(before, after).sort()).toEqual(['new.txt', 'tracked.txt']);
  });

  it('is empty outside a git work tree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bematic-nogit-'));
    dirs.push(dir);
    expect((await gitStatus(dir)).size).toBe(0);
  });
});
