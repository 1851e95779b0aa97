import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkspaceManager } from '@bematic/agent';
import type { TaskSubmit } from '@bematic/protocol';
import { now } from '../harness.js';
import { median, round } from '../stats.js';
import type { Scenario } from '../types.js';

const run = promisify(execFile);
const git = (cwd: string, ...args: string[]) =>
  run('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@localhost', ...args], {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
  });

/** A repository with `files` committed files in 100 directories. */
async function makeRepo(dir: string, files: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await git(dir, 'init', '-q', '-b', 'main');
  for (let d = 0; d < 100; d++) {
    const sub = path.join(dir, 'src', `module${d}`);
    await mkdir(sub, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let f = d; f < files; f += 100) {
      writes.push(writeFile(path.join(sub, `file${f}.ts`), `export const value${f} = ${f};\n`));
    }
    await Promise.all(writes);
  }
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-q', '-m', 'init');
}

const task = (id: string, repo: string): TaskSubmit => ({
  attempt: 1,
  taskId: id,
  projectId: 'bench',
  localPath: repo,
  botName: 'coder',
  command: 'fix',
  prompt: 'change one file',
  systemPrompt: '',
  model: 'bench',
  allowedTools: ['Edit'],
  priority: 'normal',
});

/**
 * What a worktree adds to a writing task on a repository of 10,000 files:
 * create (worktree + branch), commit (stage, commit, diff stat) and cleanup
 * (worktree and branch removed), through the agent's WorkspaceManager, next to
 * the same three steps as bare git commands (the floor git itself sets).
 */
export const worktreeOverhead: Scenario = {
  name: 'worktree',
  title: 'Worktree overhead per task (create + commit + cleanup) on a large repository',
  async run(ctx) {
    // Quick mode: a smaller repository, so the look stays short; the full run keeps 10,000 files.
    const files = ctx.quick ? 2_000 : 10_000;
    const iterations = ctx.quick ? 2 : 5;
    const root = await mkdtemp(path.join(tmpdir(), 'bematic-bench-wt-'));
    try {
      const repo = path.join(root, 'repo');
      ctx.log(`worktree: creating a repository of ${files} files`);
      await makeRepo(repo, files);
      const manager = new WorkspaceManager({
        worktreeDir: path.join(root, 'worktrees'),
        branchPrefix: 'bematic/',
      });
      const ours = { create: [] as number[], commit: [] as number[], cleanup: [] as number[] };
      const bare = { create: [] as number[], commit: [] as number[], cleanup: [] as number[] };
      for (let i = 0; i < iterations; i++) {
        // Alternate so both see the same cache and machine state.
        const t = task(`bench_${i}`, repo);
        let at = now();
        const ws = await manager.open(t, await manager.plan(t, repo));
        ours.create.push(now() - at);
        await writeFile(path.join(ws.cwd, 'src', 'module1', 'file1.ts'), `export const value1 = ${i + 2};\n`);
        at = now();
        const report = await manager.close(t, ws);
        ours.commit.push(now() - at);
        if (report.files.length !== 1)
          throw new Error(`expected one changed file, got ${report.files.length}`);
        at = now();
        await manager.discard(t.taskId, repo);
        ours.cleanup.push(now() - at);

        const wt = path.join(root, 'bare', String(i));
        const branch = `bare/${i}`;
        at = now();
        await git(repo, 'worktree', 'add', '-q', '-b', branch, wt, 'HEAD');
        bare.create.push(now() - at);
        await writeFile(path.join(wt, 'src', 'module1', 'file1.ts'), `export const value1 = ${i + 2};\n`);
        at = now();
        await git(wt, 'add', '-A');
        await git(wt, 'commit', '-q', '-m', 'bench');
        bare.commit.push(now() - at);
        at = now();
        await git(repo, 'worktree', 'remove', '--force', wt);
        await git(repo, 'branch', '-D', '-q', branch);
        bare.cleanup.push(now() - at);
        ctx.log(`worktree: ${i + 1}/${iterations}`);
      }
      const total = (p: typeof ours) => p.create.map((c, i) => c + (p.commit[i] ?? 0) + (p.cleanup[i] ?? 0));
      const m = (v: number[]) => round(median(v));
      const note = (name: keyof typeof ours) => `bare git: ${m(bare[name])} ms`;
      return {
        rows: [
          { metric: 'worktree create (p50)', value: m(ours.create), unit: 'ms', notes: note('create') },
          {
            metric: 'worktree commit + diff stat (p50)',
            value: m(ours.commit),
            unit: 'ms',
            notes: note('commit'),
          },
          { metric: 'worktree cleanup (p50)', value: m(ours.cleanup), unit: 'ms', notes: note('cleanup') },
          {
            metric: 'worktree overhead per task (p50)',
            value: m(total(ours)),
            unit: 'ms',
            notes: `bare git create+commit+remove: ${m(total(bare))} ms; ${files} files, ${iterations} runs`,
          },
        ],
        details: { files, iterations, ours, bare },
      };
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
};
