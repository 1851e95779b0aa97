import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChatFile, ChatMessage, ChatSurface, PostedMessage } from '../../src/chat/chat-surface.js';
import type { InboundRequest } from '../../src/chat/inbound.js';
import { createDatabase, type Database } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations/index.js';
import { createRepositories } from '../../src/db/repositories/index.js';
import type { Repositories, Task } from '../../src/db/repositories/types.js';
import type { CancelResult, DispatchResult, TaskDispatcher } from '../../src/gateway/types.js';

/** Test-only doubles for the edges of the conversation layer. Not used by production code. */
export interface RecordedPost {
  channelId: string;
  ts: string;
  threadTs: string | null;
  message: ChatMessage;
}

export class RecordingSurface implements ChatSurface {
  readonly name = 'console' as const;
  posts: RecordedPost[] = [];
  updates: { channelId: string; ts: string; message: ChatMessage }[] = [];
  ephemerals: { channelId: string; userId: string; message: ChatMessage }[] = [];
  reactions: { op: 'add' | 'remove'; ts: string; name: string }[] = [];
  files: { channelId: string; threadTs: string | null; file: ChatFile }[] = [];
  private seq = 0;

  async post(channelId: string, message: ChatMessage, threadTs?: string | null): Promise<PostedMessage> {
    const ts = `1700000000.${String(++this.seq).padStart(6, '0')}`;
    this.posts.push({ channelId, ts, threadTs: threadTs ?? null, message });
    return { channelId, ts };
  }
  async update(channelId: string, ts: string, message: ChatMessage): Promise<void> {
    this.updates.push({ channelId, ts, message });
  }
  async postEphemeral(channelId: string, userId: string, message: ChatMessage): Promise<void> {
    this.ephemerals.push({ channelId, userId, message });
  }
  async addReaction(_c: string, ts: string, name: string): Promise<void> {
    this.reactions.push({ op: 'add', ts, name });
  }
  async removeReaction(_c: string, ts: string, name: string): Promise<void> {
    this.reactions.push({ op: 'remove', ts, name });
  }
  async uploadFile(channelId: string, file: ChatFile, threadTs?: string | null): Promise<void> {
    this.files.push({ channelId, threadTs: threadTs ?? null, file });
  }
}

export class RecordingDispatcher implements TaskDispatcher {
  dispatched: Task[] = [];
  cancelled: { taskId: string; reason: string; actor: string }[] = [];
  next: Partial<DispatchResult> = {};
  cancelOutcome: CancelResult = { outcome: 'sent-to-agent' };
  /** When set, dispatch rejects with it (the gateway could not take the task). */
  failure: Error | null = null;
  async dispatch(task: Task): Promise<DispatchResult> {
    this.dispatched.push(task);
    if (this.failure) throw this.failure;
    return {
      agentId: task.agentId,
      sent: true,
      queued: false,
      agentOnline: true,
      reconnectEtaMs: null,
      ...this.next,
    };
  }
  async cancel(taskId: string, reason: string, actor: string): Promise<CancelResult> {
    this.cancelled.push({ taskId, reason, actor });
    return this.cancelOutcome;
  }
}

export const textOf = (m: ChatMessage): string => `${m.text}\n${JSON.stringify(m.blocks ?? [])}`;

export function request(
  surface: ChatSurface,
  over: Partial<InboundRequest> & Pick<InboundRequest, 'kind' | 'text'>,
): InboundRequest & { responses: ChatMessage[] } {
  const responses: ChatMessage[] = [];
  return {
    surface,
    userId: 'U1',
    userName: 'alice',
    channelId: 'C1',
    threadTs: null,
    messageTs: '1699999999.000100',
    receivedAt: Date.now(),
    responses,
    respond: async (m) => {
      responses.push(m);
    },
    ...over,
  };
}

export async function sqliteRepos(): Promise<{
  repos: Repositories;
  db: Database;
  cleanup(): Promise<void>;
}> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bematic-cmd-'));
  const db = await createDatabase(`sqlite:${path.join(dir, 'test.db')}`);
  await migrateToLatest(db);
  return {
    repos: createRepositories(db.db),
    db,
    cleanup: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
