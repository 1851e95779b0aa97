import { randomUUID } from 'node:crypto';
import {
  createMessage,
  MAX_DIFF_BYTES,
  type Message,
  type WorkspaceAction,
  type WorkspaceCommand,
  type WorkspaceResult,
} from '@bematic/protocol';
import pino, { type Logger } from 'pino';
import type { ChatSurface } from '../chat/chat-surface.js';
import type { Repositories, Task } from '../db/repositories/types.js';
import { noticeMessage } from '../notifications/blocks.js';
import { escapeMrkdwn } from '../notifications/mrkdwn.js';
import type { TaskEvents } from '../tasks/task-events.js';
import { pullRequestText, threadLink } from './pull-request-text.js';

export type WorkspaceRequestOutcome =
  | { kind: 'sent'; requestId: string; ownerTaskId: string }
  /** The task did not leave a branch (read-only bot, not a git project, or it never ran). */
  | { kind: 'no_branch' }
  | { kind: 'agent_offline'; agentId: string };

/** What commands need: ask the agent, get told whether the request left. */
export interface WorkspaceOperations {
  request(task: Task, action: WorkspaceAction, actor: string): Promise<WorkspaceRequestOutcome>;
}

export interface WorkspaceRequestsOptions {
  repos: Pick<Repositories, 'tasks' | 'audit'>;
  /** Writes one frame to an agent; false when it is not connected. */
  send: (agentId: string, message: Message) => Promise<boolean>;
  events: TaskEvents;
  surfaceFor: (task: Pick<Task, 'channelId'>) => ChatSurface;
  logger?: Logger;
  now?: () => number;
}

/** The task whose worktree a task's work lives in (itself, or the first task of its thread). */
export function worktreeOwner(task: Task): string | undefined {
  if (task.workspace?.mode === 'worktree') return task.workspace.ownerTaskId ?? task.id;
  return task.submission.workspace?.continueFrom;
}

/**
 * Create PR, Show diff and Discard: sends WORKSPACE_COMMAND to the agent that
 * holds the task's branch and, when WORKSPACE_RESULT comes back, answers in the
 * task's thread (PR link, patch file, or a clear reason why not).
 */
export class WorkspaceRequests implements WorkspaceOperations {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly pending = new Map<string, { actor: string; taskId: string; at: number }>();

  constructor(private readonly opts: WorkspaceRequestsOptions) {
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'workspace-requests' });
    this.now = opts.now ?? Date.now;
  }

  start(): () => void {
    return this.opts.events.on('workspace.result', (e) => this.onResult(e.task, e.result));
  }

  async request(task: Task, action: WorkspaceAction, actor: string): Promise<WorkspaceRequestOutcome> {
    const ownerId = worktreeOwner(task);
    if (ownerId === undefined) return { kind: 'no_branch' };
    const owner = (await this.opts.repos.tasks.findById(ownerId)) ?? task;
    const requestId = `wsr_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    const command: WorkspaceCommand = {
      requestId,
      taskId: ownerId,
      projectId: owner.projectId,
      localPath: owner.submission.localPath,
      action,
    };
    if (action === 'create_pr') {
      const thread = await this.threadOf(owner, ownerId);
      command.pullRequest = pullRequestText(thread, threadLink(this.opts.surfaceFor(owner).name, owner));
    }
    this.prune();
    this.pending.set(requestId, { actor, taskId: task.id, at: this.now() });
    const sent = await this.opts.send(owner.agentId, createMessage('WORKSPACE_COMMAND', command, this.now()));
    if (!sent) {
      this.pending.delete(requestId);
      return { kind: 'agent_offline', agentId: owner.agentId };
    }
    await this.audit(`workspace.${action}.requested`, actor, task.id, { ownerTaskId: ownerId, requestId });
    return { kind: 'sent', requestId, ownerTaskId: ownerId };
  }

  /**
   * Retention archived a task: once no task of its worktree is left, the agent
   * removes the worktree and branch (a PR already pushed keeps the work on the remote).
   */
  async cleanUpAfterArchival(task: Task): Promise<void> {
    const ownerId = worktreeOwner(task);
    if (ownerId === undefined) return;
    const remaining = await this.opts.repos.tasks.list({ projectId: task.projectId, limit: 500 });
    if (remaining.some((t) => t.id === ownerId || worktreeOwner(t) === ownerId)) return;
    const outcome = await this.request(task, 'discard', 'system');
    if (outcome.kind === 'agent_offline') {
      this.log.info(
        { taskId: task.id, agentId: outcome.agentId },
        'worktree of an archived task kept: agent offline',
      );
    }
  }

  /** The tasks sharing the owner's branch, oldest first. */
  private async threadOf(owner: Task, ownerId: string): Promise<Task[]> {
    const candidates = await this.opts.repos.tasks.list({ projectId: owner.projectId, limit: 500 });
    const thread = candidates
      .filter((t) => t.id === ownerId || worktreeOwner(t) === ownerId)
      .sort((a, b) => a.createdAt - b.createdAt);
    return thread.length > 0 ? thread : [owner];
  }

  private async onResult(owner: Task, result: WorkspaceResult): Promise<void> {
    const pending = this.pending.get(result.requestId);
    this.pending.delete(result.requestId);
    const actor = pending?.actor ?? 'system';
    const clicked = pending ? await this.opts.repos.tasks.findById(pending.taskId) : undefined;
    const where = clicked ?? owner;
    if (result.code === 'PR_CREATED' && result.pullRequestUrl) {
      for (const id of new Set([owner.id, where.id])) {
        await this.opts.repos.tasks
          .update(id, { pullRequestUrl: result.pullRequestUrl })
          .catch((err: unknown) =>
            this.log.warn({ err, taskId: id }, 'could not store the pull request link'),
          );
      }
    }
    await this.audit(`workspace.${result.action}`, actor, where.id, {
      code: result.code,
      ownerTaskId: owner.id,
      ...(result.branch !== undefined && { branch: result.branch }),
      ...(result.pullRequestUrl !== undefined && { pullRequestUrl: result.pullRequestUrl }),
      ...(result.detail !== undefined && { detail: result.detail.slice(0, 500) }),
    });
    const surface = this.opts.surfaceFor(where);
    try {
      if (result.code === 'DIFF' && result.patch !== undefined) {
        await surface.uploadFile(where.channelId, diffFile(result), where.threadTs);
      } else {
        await surface.post(where.channelId, resultMessage(result), where.threadTs);
      }
    } catch (err) {
      this.log.warn({ err, taskId: where.id, code: result.code }, 'could not post the workspace result');
    }
  }

  /** Requests whose answer never came (the agent went away) are forgotten after an hour. */
  private prune(): void {
    const cutoff = this.now() - 3_600_000;
    for (const [id, p] of this.pending) if (p.at < cutoff) this.pending.delete(id);
  }

  private async audit(action: string, actor: string, taskId: string, details: Record<string, unknown>) {
    await this.opts.repos.audit
      .log({ action, actor, resourceType: 'task', resourceId: taskId, details })
      .catch((err: unknown) => this.log.warn({ err, action }, 'audit write failed'));
  }
}

const code = (s: string | undefined) => `\`${escapeMrkdwn(s ?? '')}\``;
const detail = (r: WorkspaceResult) => (r.detail ? `: ${escapeMrkdwn(r.detail.slice(0, 500))}` : '.');

function diffFile(r: WorkspaceResult) {
  const kb = (n: number) => `${Math.ceil(n / 1024)} KB`;
  const total = r.patchBytes ?? Buffer.byteLength(r.patch ?? '');
  const note = r.truncated
    ? ` The patch is ${kb(total)}; this file shows its first ${kb(MAX_DIFF_BYTES)} (cut at the limit).`
    : '';
  return {
    filename: `${(r.branch ?? r.taskId).replaceAll('/', '-')}.patch`,
    content: r.patch ?? '',
    title: `Diff of ${r.branch ?? r.taskId}`,
    comment: `:page_facing_up: Diff of ${code(r.branch)} against its base.${note}`,
  };
}

/** What the thread is told, by result code. */
export function resultMessage(r: WorkspaceResult) {
  switch (r.code) {
    case 'PR_CREATED':
      return noticeMessage(
        `Pull request${r.pullRequestNumber ? ` #${r.pullRequestNumber}` : ''} for ${code(r.branch)}: <${r.pullRequestUrl}>`,
        ':rocket:',
      );
    case 'PUSHED_NO_PR':
      return noticeMessage(
        `Pushed ${code(r.branch)} to \`origin\` (push only, no pull request)${detail(r)}`,
        ':arrow_up:',
      );
    case 'DISCARDED':
      return noticeMessage(`Discarded ${code(r.branch)} and its worktree.`, ':wastebasket:');
    case 'NO_CHANGES':
      return noticeMessage(`${code(r.branch)} has no changes yet: there is nothing to push or show.`);
    case 'NOT_FOUND':
      return noticeMessage(
        `The branch of task ${code(r.taskId)} is gone (discarded, or removed on the agent).`,
        ':warning:',
      );
    case 'NO_REMOTE':
      return noticeMessage(
        `The repository has no \`origin\` remote, so ${code(r.branch)} stays on the agent's machine. Add a remote to push and open pull requests.`,
        ':warning:',
      );
    case 'PUSH_FAILED':
      return noticeMessage(`Could not push ${code(r.branch)} to \`origin\`${detail(r)}`, ':x:');
    case 'GITHUB_ERROR':
      return noticeMessage(
        `Pushed ${code(r.branch)}, but GitHub did not open the pull request${detail(r)}`,
        ':x:',
      );
    case 'PATH_NOT_ALLOWED':
      return noticeMessage(`The agent may not work in this project's directory${detail(r)}`, ':x:');
    case 'DIFF':
    case 'FAILED':
      return noticeMessage(`The agent could not do that${detail(r)}`, ':x:');
  }
}
