import { MAX_DIFF_BYTES, type WorkspaceCommand, type WorkspaceResult } from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { PathValidation } from '../security/path-validator.js';
import { git } from './git.js';
import { openPullRequest, parseGitHubRemote } from './github.js';
import { errorText, type WorkspaceManager } from './workspace-manager.js';

export interface GitHubAccess {
  apiUrl: string;
  /** From the agent's environment; never passed to Claude Code, logged or sent. */
  token: string | undefined;
}

export interface WorkspaceActionsOptions {
  workspaces: WorkspaceManager;
  validatePath: (localPath: string) => Promise<PathValidation>;
  github: GitHubAccess;
  logger?: Logger;
}

type Answer = Omit<WorkspaceResult, 'requestId' | 'taskId' | 'action'>;

/** Create PR, Show diff and Discard for a task's branch, as the cloud asks. */
export class WorkspaceActions {
  private readonly log: Logger;

  constructor(private readonly options: WorkspaceActionsOptions) {
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'workspace-actions' });
  }

  async handle(command: WorkspaceCommand): Promise<WorkspaceResult> {
    const head = { requestId: command.requestId, taskId: command.taskId, action: command.action };
    try {
      return { ...head, ...(await this.run(command)) };
    } catch (err) {
      this.log.warn(
        { taskId: command.taskId, action: command.action, err: errorText(err) },
        'workspace action failed',
      );
      return { ...head, code: 'FAILED', detail: errorText(err).slice(0, 2000) };
    }
  }

  private async run(command: WorkspaceCommand): Promise<Answer> {
    const { workspaces } = this.options;
    const checked = await this.options.validatePath(command.localPath);
    if (!checked.ok) return { code: 'PATH_NOT_ALLOWED', detail: checked.reason.slice(0, 2000) };
    const projectPath = checked.realPath;
    if (command.action === 'discard') {
      const removed = await workspaces.discard(command.taskId, projectPath);
      return removed
        ? { code: 'DISCARDED', branch: workspaces.branchFor(command.taskId) }
        : { code: 'NOT_FOUND' };
    }
    const meta = await workspaces.locate(command.taskId, projectPath);
    if (meta === undefined) return { code: 'NOT_FOUND' };
    const branch = meta.branch;
    if (!(await workspaces.hasChanges(meta))) return { code: 'NO_CHANGES', branch };
    if (command.action === 'show_diff') {
      const patch = await workspaces.diff(meta);
      const bytes = Buffer.byteLength(patch);
      const cut = bytes > MAX_DIFF_BYTES;
      return {
        code: 'DIFF',
        branch,
        patch: cut
          ? Buffer.from(patch)
              .subarray(0, MAX_DIFF_BYTES)
              .toString('utf8')
              .replace(/\uFFFD+$/, '')
          : patch,
        patchBytes: bytes,
        truncated: cut,
      };
    }
    return this.pullRequest(command, meta.repoRoot, branch, meta.base);
  }

  private async pullRequest(
    command: WorkspaceCommand,
    repoRoot: string,
    branch: string,
    base: string,
  ): Promise<Answer> {
    const remoteUrl = (await git(repoRoot, ['config', '--get', 'remote.origin.url']).catch(() => '')).trim();
    if (!remoteUrl) return { code: 'NO_REMOTE', branch };
    try {
      await git(repoRoot, ['push', '--quiet', 'origin', `refs/heads/${branch}:refs/heads/${branch}`]);
    } catch (err) {
      return { code: 'PUSH_FAILED', branch, detail: errorText(err) };
    }
    const pushed = { branch, remote: 'origin' };
    const { github } = this.options;
    const repo = parseGitHubRemote(remoteUrl, github.apiUrl);
    if (repo === undefined)
      return { code: 'PUSHED_NO_PR', ...pushed, detail: 'origin is not a GitHub repository' };
    if (!github.token)
      return { code: 'PUSHED_NO_PR', ...pushed, detail: 'GITHUB_TOKEN is not set on the agent' };
    const baseBranch = await this.baseBranch(repoRoot, base);
    if (baseBranch === undefined) {
      return {
        code: 'GITHUB_ERROR',
        ...pushed,
        detail: `the base ${base} is not a branch, so no pull request can target it`,
      };
    }
    const title = command.pullRequest?.title ?? branch;
    const outcome = await openPullRequest(
      { apiUrl: github.apiUrl, token: github.token },
      { repo, head: branch, base: baseBranch, title, body: command.pullRequest?.body ?? '' },
    );
    if (!outcome.ok) return { code: 'GITHUB_ERROR', ...pushed, detail: outcome.detail };
    this.log.info(
      { taskId: command.taskId, number: outcome.number, existed: outcome.existed },
      'pull request ready',
    );
    return { code: 'PR_CREATED', ...pushed, pullRequestUrl: outcome.url, pullRequestNumber: outcome.number };
  }

  /** The branch a PR targets: the task's base when it is a branch, else origin's default branch. */
  private async baseBranch(repoRoot: string, base: string): Promise<string | undefined> {
    const isBranch = await git(repoRoot, ['rev-parse', '--verify', '-q', `refs/heads/${base}`]).then(
      () => true,
      () => false,
    );
    if (isBranch) return base;
    const remoteBranch = /^origin\/(.+)$/.exec(base)?.[1];
    if (remoteBranch) return remoteBranch;
    const originHead = await git(repoRoot, [
      'symbolic-ref',
      '--short',
      '-q',
      'refs/remotes/origin/HEAD',
    ]).catch(() => '');
    return /^origin\/(.+)$/.exec(originHead.trim())?.[1];
  }
}
