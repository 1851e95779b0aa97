import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

export type PathValidation = { ok: true; realPath: string } | { ok: false; reason: string };

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * Decides whether a task may run in `localPath`: it must be an existing
 * directory whose real path (symlinks followed) lies inside an allowed root.
 * Comparing real paths on both sides is what defeats `..` and symlink escapes.
 */
export class PathValidator {
  private rootsReal: Promise<string[]> | undefined;

  constructor(private readonly roots: readonly string[]) {}

  private realRoots(): Promise<string[]> {
    this.rootsReal ??= Promise.all(
      this.roots.map((r) => realpath(path.resolve(r)).catch(() => undefined)),
    ).then((rs) => rs.filter((r): r is string => r !== undefined));
    return this.rootsReal;
  }

  async validate(localPath: string): Promise<PathValidation> {
    if (localPath.includes('\0')) return { ok: false, reason: 'path contains a NUL byte' };
    if (!path.isAbsolute(localPath)) return { ok: false, reason: `path "${localPath}" is not absolute` };
    let real: string;
    try {
      real = await realpath(localPath);
    } catch {
      return { ok: false, reason: `path "${localPath}" does not exist` };
    }
    const roots = await this.realRoots();
    if (!roots.some((root) => isInside(root, real))) {
      return { ok: false, reason: `path "${localPath}" is outside the directories this agent may work in` };
    }
    try {
      if (!(await stat(real)).isDirectory())
        return { ok: false, reason: `path "${localPath}" is not a directory` };
    } catch {
      return { ok: false, reason: `path "${localPath}" cannot be read` };
    }
    return { ok: true, realPath: real };
  }
}
