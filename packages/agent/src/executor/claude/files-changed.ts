import { join, relative } from 'node:path';
import { git } from '../../workspace/git.js';
import { changedFilePath, displayPath } from './tool-steps.js';

/** Files the model changed through its file tools, confirmed by a successful tool result. */
export class FileChangeTracker {
  private readonly pending = new Map<string, string>();
  private readonly changed = new Set<string>();

  constructor(private readonly cwd: string) {}

  noteToolUse(id: string, tool: string, input: unknown): void {
    const path = changedFilePath(tool, input);
    if (path !== undefined) this.pending.set(id, displayPath(path, this.cwd));
  }

  noteToolResult(id: string, isError: boolean): void {
    const path = this.pending.get(id);
    if (path === undefined) return;
    this.pending.delete(id);
    if (!isError) this.changed.add(path);
  }

  add(paths: Iterable<string>): void {
    for (const p of paths) this.changed.add(p);
  }

  list(): string[] {
    return [...this.changed].sort();
  }
}

/**
 * `git status --porcelain` of `cwd` as "code path" entries, paths relative to `cwd`;
 * empty when `cwd` is not inside a git work tree or git is unavailable.
 */
export async function gitStatus(cwd: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  try {
    // Through the one git module: without optional locks, so reading a checkout never rewrites its index.
    const top = await git(cwd, ['rev-parse', '--show-toplevel']);
    const root = top.trim();
    const stdout = await git(cwd, ['status', '--porcelain', '-z', '--untracked-files=all', '--', '.']);
    const entries = stdout.split('\0');
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] ?? '';
      if (entry.length < 4) continue;
      const code = entry.slice(0, 2);
      out.set(relative(cwd, join(root, entry.slice(3))), code);
      // Renames and copies are followed by their source path.
      if (code.includes('R') || code.includes('C')) i++;
    }
  } catch {
    return out;
  }
  return out;
}

/** Paths whose git status differs between two snapshots (so pre-existing dirt is not blamed on the task). */
export function gitChangesBetween(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after.entries()].filter(([path, code]) => before.get(path) !== code).map(([path]) => path);
}
