import { execFile } from 'node:child_process';

/** A git command that exited non-zero (or could not start). */
export class GitError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    readonly exitCode: number | undefined,
  ) {
    super(`git ${args[0] ?? ''} failed${exitCode === undefined ? '' : ` (${exitCode})`}: ${stderr.trim()}`);
    this.name = 'GitError';
  }
}

export interface GitOptions {
  /** Extra environment on top of the agent's own (e.g. author identity). */
  env?: Record<string, string>;
  maxBuffer?: number;
  input?: string;
}

/**
 * The agent's only way to run git: plain `git` without a shell, never
 * prompting, without optional index locks (so reading a checkout never
 * rewrites its index), without pagers, and without hooks: a hook is code the
 * model could have written, and it would run with the agent's credentials.
 */
export function git(cwd: string, args: readonly string[], opts: GitOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      ['-c', 'core.hooksPath=/dev/null', '-c', 'commit.gpgsign=false', ...args],
      {
        cwd,
        env: {
          ...process.env,
          GIT_TERMINAL_PROMPT: '0',
          GIT_OPTIONAL_LOCKS: '0',
          GIT_PAGER: 'cat',
          LC_ALL: 'C',
          ...opts.env,
        },
        maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : undefined;
          reject(new GitError(args, stderr || err.message, code));
        } else resolve(stdout);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like `git`, but a non-zero exit is an answer (false) rather than an error. */
export async function gitSucceeds(cwd: string, args: readonly string[]): Promise<boolean> {
  try {
    await git(cwd, args);
    return true;
  } catch (err) {
    if (err instanceof GitError && err.exitCode !== undefined) return false;
    throw err;
  }
}

/** The top of the work tree containing `dir`, or undefined when it is not in one (or git is missing). */
export async function workTreeRoot(dir: string): Promise<string | undefined> {
  try {
    return (await git(dir, ['rev-parse', '--show-toplevel'])).trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface FileStat {
  path: string;
  added: number;
  removed: number;
  binary: boolean;
}

/** Per-file +/− between two commits (`git diff --numstat`), renames shown under their new path. */
export async function diffStat(cwd: string, from: string, to: string): Promise<FileStat[]> {
  const out = await git(cwd, ['diff', '--numstat', '-z', '--no-renames', from, to, '--']);
  const stats: FileStat[] = [];
  for (const entry of out.split('\0')) {
    const m = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(entry);
    if (!m) continue;
    const binary = m[1] === '-';
    stats.push({
      path: m[3] ?? '',
      added: binary ? 0 : Number(m[1]),
      removed: binary ? 0 : Number(m[2]),
      binary,
    });
  }
  return stats;
}
