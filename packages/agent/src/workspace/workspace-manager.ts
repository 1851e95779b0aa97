import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  KeyedSequence,
  type TaskSubmit,
  type WorkspaceMode,
  type WorkspaceNotice,
  type WorkspaceReport,
} from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import { diffStat, type FileStat, GitError, git, gitSucceeds, workTreeRoot } from './git.js';

/** Tools that change files; a bot offered any of them gets its own worktree. */
export const WRITING_TOOLS: ReadonlySet<string> = new Set([
  'Edit',
  'Write',
  'MultiEdit',
  'NotebookEdit',
  'Bash',
]);

export const COMMIT_AUTHOR = { name: 'Bematic', email: 'bematic@localhost' } as const;

/** Task ids become directory and branch names, so only these characters are accepted. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Why a workspace could not be set up; the message is what the thread shows. */
export class WorkspaceError extends Error {
  constructor(
    readonly code:
      | 'BASE_NOT_FOUND'
      | 'NO_COMMITS'
      | 'UNSAFE_ID'
      | 'WORKTREE_DIR_INSIDE_CHECKOUT'
      | 'GIT_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'WorkspaceError';
  }
}

/** What admission needs to know before anything is created. */
export interface WorkspacePlan {
  mode: WorkspaceMode;
  /** Tasks with the same lane never run at once (one worktree, or one in-place checkout). */
  lane: string;
  projectPath: string;
  /** Top of the repository the project lives in (the project may be a sub-directory). */
  repoRoot?: string;
  ownerTaskId?: string;
}

/** A prepared place for one task to run. */
export interface Workspace extends WorkspacePlan {
  /** Where Claude Code runs: inside the worktree for writers, the project itself otherwise. */
  cwd: string;
  worktreePath?: string;
  branch?: string;
  base?: string;
  baseCommit?: string;
  /** Tip of the branch when this task started: its own changes are diffed from here. */
  startCommit?: string;
  /** The checkout's HEAD when this task started, to notice it moving. */
  checkoutHead?: string;
  notices: WorkspaceNotice[];
  dirtyFiles?: number;
}

const Meta = z.object({
  ownerTaskId: z.string(),
  projectPath: z.string(),
  repoRoot: z.string(),
  worktreePath: z.string(),
  branch: z.string(),
  base: z.string(),
  baseCommit: z.string(),
  createdAt: z.number(),
});
type Meta = z.infer<typeof Meta>;

export interface WorkspaceManagerOptions {
  /** Directory the agent owns for worktrees; never inside a checkout. */
  worktreeDir: string;
  branchPrefix: string;
  logger?: Logger;
  now?: () => number;
}

export function isWritingTask(task: Pick<TaskSubmit, 'allowedTools'>): boolean {
  return task.allowedTools.some((t) => WRITING_TOOLS.has(t));
}

/** First line of the request, as a commit subject. */
export function commitMessage(task: Pick<TaskSubmit, 'prompt' | 'taskId'>): string {
  const first = task.prompt.trim().split('\n')[0]?.trim() ?? '';
  const subject = first.length > 72 ? `${first.slice(0, 71)}…` : first || 'Bematic task';
  return `${subject}\n\nBematic-Task: ${task.taskId}\n`;
}

/**
 * Gives every writing task its own git worktree on its own branch, created
 * from the checkout's HEAD (or a named base) in a directory the agent owns,
 * and commits what the task changed when it ends. The checkout's working
 * tree, index and HEAD are never written.
 */
export class WorkspaceManager {
  private readonly log: Logger;
  private readonly now: () => number;
  /** Admission asks for the same few projects' roots over and over: answered without spawning git. */
  private readonly roots = new WorkTreeRoots();
  /**
   * Per repository, one worktree administration (create, discard) at a time. git keeps a repository's worktrees
   * in one directory (.git/worktrees) and its worktree commands are not safe side by side: an add reads every
   * entry there and fails on another add's half-written one ("failed to read .git/worktrees/<id>/commondir"),
   * a prune deletes an entry still being added.
   */
  private readonly administering = new KeyedSequence();

  constructor(private readonly options: WorkspaceManagerOptions) {
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'workspace' });
    this.now = options.now ?? Date.now;
  }

  branchFor(ownerTaskId: string): string {
    return `${this.options.branchPrefix}${ownerTaskId}`;
  }

  worktreePathFor(ownerTaskId: string): string {
    return path.join(this.options.worktreeDir, ownerTaskId);
  }

  private metaPath(ownerTaskId: string): string {
    return path.join(this.options.worktreeDir, `${ownerTaskId}.json`);
  }

  async plan(task: TaskSubmit, projectPath: string): Promise<WorkspacePlan> {
    if (!isWritingTask(task)) return { mode: 'read-only', lane: `read:${task.taskId}`, projectPath };
    const repoRoot = await this.roots.get(projectPath);
    if (repoRoot === undefined) return { mode: 'in-place', lane: `dir:${projectPath}`, projectPath };
    const ownerTaskId = task.workspace?.continueFrom ?? task.taskId;
    return { mode: 'worktree', lane: `worktree:${ownerTaskId}`, projectPath, repoRoot, ownerTaskId };
  }

  /** Creates (or, for a follow-up, reopens) the task's worktree. */
  async open(task: TaskSubmit, plan: WorkspacePlan): Promise<Workspace> {
    try {
      if (plan.mode !== 'worktree') return await this.openPlanned(task, plan);
      return await this.administering.run(plan.repoRoot ?? plan.projectPath, () =>
        this.openPlanned(task, plan),
      );
    } catch (err) {
      // Whatever broke, the next task's plan asks git about the project again.
      this.roots.forget(plan.projectPath);
      throw err;
    }
  }

  private async openPlanned(task: TaskSubmit, plan: WorkspacePlan): Promise<Workspace> {
    if (plan.mode === 'read-only') return { ...plan, cwd: plan.projectPath, notices: [] };
    if (plan.mode === 'in-place') return { ...plan, cwd: plan.projectPath, notices: ['NOT_A_GIT_REPO'] };
    const owner = plan.ownerTaskId ?? task.taskId;
    const repoRoot = plan.repoRoot ?? plan.projectPath;
    if (!SAFE_ID.test(owner)) {
      throw new WorkspaceError('UNSAFE_ID', `Task id "${owner.slice(0, 80)}" cannot name a branch.`);
    }
    const rel = path.relative(repoRoot, path.resolve(this.options.worktreeDir));
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
      throw new WorkspaceError(
        'WORKTREE_DIR_INSIDE_CHECKOUT',
        `BEMATIC_WORKTREE_DIR (${this.options.worktreeDir}) is inside the checkout ${repoRoot}; worktrees must live outside it.`,
      );
    }
    await mkdir(this.options.worktreeDir, { recursive: true });
    const worktreePath = this.worktreePathFor(owner);
    const branch = this.branchFor(owner);
    const subdir = path.relative(repoRoot, plan.projectPath);
    const checkoutHead = await this.headOf(repoRoot);
    const notices: WorkspaceNotice[] = [];

    // A follow-up, or a task started again after the agent died mid-run: the branch holds its work.
    const branchExists = await gitSucceeds(repoRoot, ['rev-parse', '--verify', '-q', `refs/heads/${branch}`]);
    if (branchExists) {
      const meta = await this.readMeta(owner);
      if (!(await this.isRegisteredWorktree(repoRoot, worktreePath))) {
        await rm(worktreePath, { recursive: true, force: true });
        await git(repoRoot, ['worktree', 'prune']);
        await git(repoRoot, ['worktree', 'add', worktreePath, branch]);
        notices.push('WORKTREE_RECREATED');
      }
      const startCommit = (await git(worktreePath, ['rev-parse', 'HEAD'])).trim();
      const base = meta?.base ?? 'HEAD';
      const baseCommit = meta?.baseCommit ?? startCommit;
      if (meta === undefined) {
        await this.writeMeta({
          ownerTaskId: owner,
          projectPath: plan.projectPath,
          repoRoot,
          worktreePath,
          branch,
          base,
          baseCommit,
          createdAt: this.now(),
        });
      }
      return {
        ...plan,
        cwd: path.join(worktreePath, subdir),
        worktreePath,
        branch,
        base,
        baseCommit,
        startCommit,
        ...(checkoutHead !== undefined && { checkoutHead }),
        notices,
      };
    }
    if (task.workspace?.continueFrom !== undefined) notices.push('BRANCH_RECREATED');

    const requested = task.workspace?.base;
    if (checkoutHead === undefined && requested === undefined) {
      throw new WorkspaceError(
        'NO_COMMITS',
        'The repository has no commits yet, so there is nothing to branch from. Commit once (or pass `--base <ref>`).',
      );
    }
    let baseCommit: string;
    try {
      baseCommit = (
        await git(repoRoot, ['rev-parse', '--verify', '-q', `${requested ?? 'HEAD'}^{commit}`])
      ).trim();
    } catch {
      throw new WorkspaceError(
        'BASE_NOT_FOUND',
        `The base \`${requested ?? 'HEAD'}\` is not a commit in this repository.`,
      );
    }
    const base = requested ?? (await this.currentBranch(repoRoot)) ?? baseCommit.slice(0, 12);
    // Uncommitted work in the checkout is not part of HEAD: say so rather than silently leave it out.
    const dirty = requested === undefined ? await this.dirtyCount(repoRoot) : 0;
    if (dirty > 0) notices.push('BASE_DIRTY');
    return this.create(task, plan, {
      owner,
      worktreePath,
      branch,
      base,
      baseCommit,
      subdir,
      notices,
      checkoutHead,
      ...(dirty > 0 && { dirty }),
    });
  }

  private async create(
    task: TaskSubmit,
    plan: WorkspacePlan,
    w: {
      owner: string;
      worktreePath: string;
      branch: string;
      base: string;
      baseCommit: string;
      subdir: string;
      notices: WorkspaceNotice[];
      checkoutHead: string | undefined;
      dirty?: number;
    },
  ): Promise<Workspace> {
    const repoRoot = plan.repoRoot ?? plan.projectPath;
    // Left over from a crash between creating the worktree and using it.
    if (!(await this.isRegisteredWorktree(repoRoot, w.worktreePath))) {
      await rm(w.worktreePath, { recursive: true, force: true });
    }
    await git(repoRoot, ['worktree', 'prune']);
    try {
      await git(repoRoot, ['worktree', 'add', '-b', w.branch, w.worktreePath, w.baseCommit]);
    } catch (err) {
      throw new WorkspaceError(
        'GIT_FAILED',
        `Could not create a worktree for ${task.taskId}: ${errorText(err)}`,
      );
    }
    await this.writeMeta({
      ownerTaskId: w.owner,
      projectPath: plan.projectPath,
      repoRoot,
      worktreePath: w.worktreePath,
      branch: w.branch,
      base: w.base,
      baseCommit: w.baseCommit,
      createdAt: this.now(),
    });
    this.log.info({ taskId: task.taskId, branch: w.branch, base: w.base }, 'worktree created');
    return {
      ...plan,
      cwd: path.join(w.worktreePath, w.subdir),
      worktreePath: w.worktreePath,
      branch: w.branch,
      base: w.base,
      baseCommit: w.baseCommit,
      startCommit: w.baseCommit,
      ...(w.checkoutHead !== undefined && { checkoutHead: w.checkoutHead }),
      notices: w.notices,
      ...(w.dirty !== undefined && { dirtyFiles: w.dirty }),
    };
  }

  /** Commits what the task changed (nothing when nothing changed) and describes the result. */
  async close(task: TaskSubmit, ws: Workspace): Promise<WorkspaceReport> {
    const report: WorkspaceReport = { mode: ws.mode, files: [], notices: [...ws.notices] };
    if (ws.dirtyFiles !== undefined) report.dirtyFiles = ws.dirtyFiles;
    if (ws.mode !== 'worktree' || ws.worktreePath === undefined || ws.branch === undefined) return report;
    report.ownerTaskId = ws.ownerTaskId ?? task.taskId;
    report.branch = ws.branch;
    if (ws.base !== undefined) report.base = ws.base;
    if (ws.baseCommit !== undefined) report.baseCommit = ws.baseCommit;
    const wt = ws.worktreePath;
    await git(wt, ['add', '-A']);
    const changed = !(await gitSucceeds(wt, ['diff', '--cached', '--quiet']));
    const head = (await git(wt, ['rev-parse', 'HEAD'])).trim();
    if (changed) {
      const identity = {
        GIT_AUTHOR_NAME: COMMIT_AUTHOR.name,
        GIT_AUTHOR_EMAIL: COMMIT_AUTHOR.email,
        GIT_COMMITTER_NAME: COMMIT_AUTHOR.name,
        GIT_COMMITTER_EMAIL: COMMIT_AUTHOR.email,
      };
      await git(wt, ['commit', '--no-verify', '-q', '-F', '-'], {
        env: identity,
        input: commitMessage(task),
      });
      report.commit = (await git(wt, ['rev-parse', 'HEAD'])).trim();
    } else if (head !== ws.startCommit) {
      // The model committed by itself: that is the task's work too.
      report.commit = head;
    }
    if (report.commit !== undefined) {
      report.files = (await diffStat(wt, ws.startCommit ?? ws.baseCommit ?? 'HEAD~1', report.commit)).map(
        (f: FileStat) => ({ ...f, path: f.path.slice(0, 4096) }),
      );
    }
    const repoRoot = ws.repoRoot ?? ws.projectPath;
    const headNow = await this.headOf(repoRoot);
    if (ws.checkoutHead !== undefined && headNow !== ws.checkoutHead) report.notices.push('HEAD_MOVED');
    this.log.info({ taskId: task.taskId, branch: ws.branch, commit: report.commit }, 'task work committed');
    return report;
  }

  /** Where an earlier task's branch is, for PR, diff and discard. Undefined when it is gone. */
  async locate(ownerTaskId: string, projectPath: string): Promise<Meta | undefined> {
    if (!SAFE_ID.test(ownerTaskId)) return undefined;
    const branch = this.branchFor(ownerTaskId);
    const meta = await this.readMeta(ownerTaskId);
    const repoRoot = meta?.repoRoot ?? (await workTreeRoot(projectPath));
    if (repoRoot === undefined) return undefined;
    const exists = await gitSucceeds(repoRoot, ['rev-parse', '--verify', '-q', `refs/heads/${branch}`]);
    if (!exists) return undefined;
    if (meta !== undefined) return meta;
    const baseCommit = (await git(repoRoot, ['merge-base', 'HEAD', branch]).catch(() => '')).trim();
    return {
      ownerTaskId,
      projectPath,
      repoRoot,
      worktreePath: this.worktreePathFor(ownerTaskId),
      branch,
      base: (await this.currentBranch(repoRoot)) ?? 'HEAD',
      baseCommit: baseCommit || branch,
      createdAt: this.now(),
    };
  }

  /** The branch's changes against its base as a patch. */
  async diff(meta: Meta): Promise<string> {
    return git(meta.repoRoot, [
      'diff',
      '--no-color',
      '--binary',
      `${meta.baseCommit}..refs/heads/${meta.branch}`,
    ]);
  }

  /** True when the branch has commits its base does not. */
  async hasChanges(meta: Meta): Promise<boolean> {
    const count = (
      await git(meta.repoRoot, ['rev-list', '--count', `${meta.baseCommit}..refs/heads/${meta.branch}`])
    ).trim();
    return Number(count) > 0;
  }

  /** Removes the worktree and the branch. False when there was nothing to remove. */
  async discard(ownerTaskId: string, projectPath: string): Promise<boolean> {
    const meta = await this.locate(ownerTaskId, projectPath);
    const repoRoot = meta?.repoRoot ?? (await workTreeRoot(projectPath));
    if (repoRoot === undefined) return this.discardIn(undefined, ownerTaskId, meta);
    return this.administering.run(repoRoot, () => this.discardIn(repoRoot, ownerTaskId, meta));
  }

  private async discardIn(
    repoRoot: string | undefined,
    ownerTaskId: string,
    meta: Meta | undefined,
  ): Promise<boolean> {
    const worktreePath = this.worktreePathFor(ownerTaskId);
    let removed = false;
    if (repoRoot !== undefined && (await this.isRegisteredWorktree(repoRoot, worktreePath))) {
      await git(repoRoot, ['worktree', 'remove', '--force', '--force', worktreePath]);
      removed = true;
    }
    if (await stat(worktreePath).catch(() => undefined)) {
      await rm(worktreePath, { recursive: true, force: true });
      removed = true;
    }
    if (repoRoot !== undefined) {
      await git(repoRoot, ['worktree', 'prune']);
      if (meta !== undefined) {
        await git(repoRoot, ['branch', '-D', '-q', meta.branch]);
        removed = true;
      }
    }
    await rm(this.metaPath(ownerTaskId), { force: true });
    if (removed) this.log.info({ ownerTaskId }, 'worktree and branch discarded');
    return removed;
  }

  /**
   * At start-up: forget worktrees git no longer has, and delete directories
   * under the worktree dir that no repository knows (left by a crash).
   * Branches are kept: they hold work a thread may still continue or open a PR from.
   */
  async prune(): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    const entries = await readdir(this.options.worktreeDir, { withFileTypes: true }).catch(() => []);
    const metas = new Map<string, Meta>();
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.json')) continue;
      const meta = await this.readMeta(e.name.slice(0, -'.json'.length));
      if (meta) metas.set(meta.ownerTaskId, meta);
    }
    const repos = new Set([...metas.values()].map((m) => m.repoRoot));
    for (const repo of repos) {
      if (await workTreeRoot(repo)) await git(repo, ['worktree', 'prune']).catch(() => '');
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const meta = metas.get(e.name);
      const dir = path.join(this.options.worktreeDir, e.name);
      const known =
        meta !== undefined && (await this.isRegisteredWorktree(meta.repoRoot, dir).catch(() => false));
      if (!known) {
        await rm(dir, { recursive: true, force: true });
        removed.push(dir);
      }
    }
    for (const meta of metas.values()) {
      if (!(await workTreeRoot(meta.repoRoot))) {
        await rm(this.metaPath(meta.ownerTaskId), { force: true });
      }
    }
    if (removed.length > 0) this.log.info({ removed }, 'stale worktrees pruned');
    return { removed };
  }

  private async isRegisteredWorktree(repoRoot: string, worktreePath: string): Promise<boolean> {
    const out = await git(repoRoot, ['worktree', 'list', '--porcelain']);
    const want = path.resolve(worktreePath);
    return out.split('\n').some((l) => l.startsWith('worktree ') && path.resolve(l.slice(9)) === want);
  }

  private async headOf(repoRoot: string): Promise<string | undefined> {
    try {
      return (await git(repoRoot, ['rev-parse', '--verify', '-q', 'HEAD'])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  private async currentBranch(repoRoot: string): Promise<string | undefined> {
    try {
      return (await git(repoRoot, ['symbolic-ref', '--short', '-q', 'HEAD'])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  private async dirtyCount(repoRoot: string): Promise<number> {
    const out = await git(repoRoot, ['status', '--porcelain', '-z', '--untracked-files=normal']);
    const entries = out.split('\0');
    let count = 0;
    for (let i = 0; i < entries.length; i++) {
      const code = entries[i]?.slice(0, 2) ?? '';
      if ((entries[i]?.length ?? 0) < 4) continue;
      count++;
      // Renames and copies are followed by their source path.
      if (code.includes('R') || code.includes('C')) i++;
    }
    return count;
  }

  private async readMeta(ownerTaskId: string): Promise<Meta | undefined> {
    try {
      const parsed = Meta.safeParse(JSON.parse(await readFile(this.metaPath(ownerTaskId), 'utf8')));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  private async writeMeta(meta: Meta): Promise<void> {
    await writeFile(this.metaPath(meta.ownerTaskId), `${JSON.stringify(meta, null, 2)}\n`);
  }
}

/** Identity of a `.git` entry: a different one (re-created, moved, replaced) means the answer may differ. */
interface GitEntryIdentity {
  dev: number;
  ino: number;
  /** A `.git` file (a linked worktree or submodule) names its git dir inside: rewritten, it may point elsewhere. */
  fileMtimeMs?: number;
}

async function gitEntryIdentity(dir: string): Promise<GitEntryIdentity | undefined> {
  const s = await stat(path.join(dir, '.git')).catch(() => undefined);
  if (s === undefined) return undefined;
  return { dev: s.dev, ino: s.ino, ...(s.isFile() && { fileMtimeMs: s.mtimeMs }) };
}

const sameEntry = (a: GitEntryIdentity | undefined, b: GitEntryIdentity | undefined): boolean =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino && a.fileMtimeMs === b.fileMtimeMs;

/**
 * `git rev-parse --show-toplevel` per project path, remembered. An answer is reused only while the root's
 * `.git` entry is the same one (same device and inode; for a `.git` file, also unchanged) and the project
 * directory, when below the root, has not become a repository of its own; otherwise git is asked again.
 * "Not in a repository" is never remembered: the next task asks git, so a `git init` takes effect at once.
 */
export class WorkTreeRoots {
  private readonly known = new Map<string, { root: string; entry: GitEntryIdentity }>();
  /** Look-ups under way: tasks of one project arriving together (a drain) share one `git rev-parse`. */
  private readonly looking = new Map<string, Promise<string | undefined>>();

  constructor(private readonly capacity = 1000) {}

  async get(projectPath: string): Promise<string | undefined> {
    const hit = this.known.get(projectPath);
    if (hit !== undefined) {
      const [entry, own] = await Promise.all([
        gitEntryIdentity(hit.root),
        hit.root === projectPath ? undefined : stat(path.join(projectPath, '.git')).catch(() => undefined),
      ]);
      if (own === undefined && sameEntry(entry, hit.entry)) return hit.root;
      this.known.delete(projectPath);
    }
    const under = this.looking.get(projectPath);
    if (under !== undefined) return under;
    const lookup: Promise<string | undefined> = this.lookUp(projectPath).finally(() => {
      // A forget() meanwhile may have let a newer look-up take the slot: that one stays.
      if (this.looking.get(projectPath) === lookup) this.looking.delete(projectPath);
    });
    this.looking.set(projectPath, lookup);
    return lookup;
  }

  forget(projectPath: string): void {
    this.known.delete(projectPath);
    this.looking.delete(projectPath);
  }

  private async lookUp(projectPath: string): Promise<string | undefined> {
    const root = await workTreeRoot(projectPath);
    if (root === undefined) return undefined;
    const entry = await gitEntryIdentity(root);
    if (entry !== undefined) {
      if (this.known.size >= this.capacity) {
        const oldest = this.known.keys().next().value;
        if (oldest !== undefined) this.known.delete(oldest);
      }
      this.known.set(projectPath, { root, entry });
    }
    return root;
  }
}

/** A git or GitHub failure as the thread may show it: credentials in URLs (user:token@host) removed. */
export function errorText(err: unknown): string {
  const text = err instanceof GitError ? err.stderr.trim() : err instanceof Error ? err.message : String(err);
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@').slice(0, 1000);
}
