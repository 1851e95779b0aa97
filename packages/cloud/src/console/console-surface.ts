import { redactDeep } from '@bematic/protocol';
import type { Logger } from 'pino';
import type { ChatFile, ChatMessage, ChatSurface, PostedMessage } from '../chat/chat-surface.js';
import type { ConsoleMessageRepository, StoredConsoleMessage } from '../db/repositories/types.js';
import type { ConsoleChange, ConsoleMessage, ConsoleThread } from '../http/api-types.js';

export type { ConsoleChange, ConsoleMessage, ConsoleThread } from '../http/api-types.js';

/** Channel ids of the local web console all start with this. */
export const CONSOLE_CHANNEL_PREFIX = 'console:';
export const DEFAULT_CONSOLE_CHANNEL = 'console:local';
/** Author id of messages the cloud posts. */
export const CONSOLE_BOT_USER = 'bematic';
const TS_FORMAT = /^\d{1,12}\.\d{6}$/;

export class ConsoleSurfaceError extends Error {
  constructor(
    readonly code: 'channel_not_found' | 'thread_not_found' | 'message_not_found' | 'cant_update_message',
    message: string,
  ) {
    super(message);
    this.name = 'ConsoleSurfaceError';
  }
}

export interface ConsoleSurfaceOptions {
  now?: () => number;
  botUserId?: string;
  /** Threads kept per channel; the oldest thread goes first. */
  maxThreadsPerChannel?: number;
  /** Replies kept per thread; the oldest replies go first (the root stays). */
  maxRepliesPerThread?: number;
  /** Where conversations are kept across restarts (memory only without it). */
  store?: ConsoleMessageRepository;
  /**
   * Microseconds (0–999) added to every ts this surface makes: instances sharing a store use different
   * ones, so two messages posted in the same millisecond on two instances still get different ts.
   */
  tsSalt?: number;
  logger?: Logger;
}

interface StoredThread {
  root: ConsoleMessage;
  replies: ConsoleMessage[];
}

/**
 * The web console's conversation store, speaking the same ChatSurface as
 * Slack: messages carry Slack-style timestamps ("1700000000.000100"), threads
 * hang off a root message, ephemerals are visible to one user, and every
 * change is pushed to subscribers so the dashboard updates live. With a
 * store, every message is written through to the database and the recent
 * threads are read back at start-up, so conversations survive restarts;
 * memory holds only the recent threads, older ones are read on demand.
 */
export class ConsoleChatSurface implements ChatSurface {
  readonly name = 'console' as const;
  readonly botUserId: string;
  private readonly now: () => number;
  private readonly maxThreads: number;
  private readonly maxReplies: number;
  private readonly channels = new Map<string, Map<string, StoredThread>>();
  /** ts → message, across all channels (ts is unique per surface). */
  private readonly byTs = new Map<string, ConsoleMessage>();
  private readonly listeners = new Set<(change: ConsoleChange) => void>();
  private lastMicros = 0;
  private readonly store: ConsoleMessageRepository | undefined;
  private readonly tsSalt: number;
  private readonly logger: Logger | undefined;
  /** Writes to the store, in order. */
  private writes: Promise<void> = Promise.resolve();
  /** Messages an update was dropped for (warned once each). */
  private readonly missing = new Set<string>();
  private readonly storedListeners = new Set<(ts: string) => void>();

  constructor(opts: ConsoleSurfaceOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.botUserId = opts.botUserId ?? CONSOLE_BOT_USER;
    this.maxThreads = Math.max(1, opts.maxThreadsPerChannel ?? 200);
    this.maxReplies = Math.max(1, opts.maxRepliesPerThread ?? 500);
    this.store = opts.store;
    this.tsSalt = Math.max(0, Math.min(999, Math.floor(opts.tsSalt ?? 0)));
    this.logger = opts.logger;
  }

  /** Read a channel's recent threads back from the store (start-up). */
  async restore(channelId: string = DEFAULT_CONSOLE_CHANNEL): Promise<number> {
    if (!this.store) return 0;
    const threads = await this.store.recentThreads(channelId, this.maxThreads, this.maxReplies);
    for (const t of threads) this.adopt(t.root, t.replies);
    return threads.length;
  }

  /** Resolves when everything posted so far is in the store. */
  async flush(): Promise<void> {
    await this.writes;
  }

  static isConsoleChannel(channelId: string): boolean {
    return channelId.startsWith(CONSOLE_CHANNEL_PREFIX);
  }

  async post(channelId: string, message: ChatMessage, threadTs?: string | null): Promise<PostedMessage> {
    if (threadTs) await this.loadThread(channelId, threadTs);
    const m = this.append(channelId, this.botUserId, message, threadTs ?? null, null, true);
    return { channelId, ts: m.ts };
  }

  /**
   * Updating a message that is gone (never kept, or dropped long ago) is not
   * an error worth retrying: the update is dropped, with one warning per message.
   */
  async update(channelId: string, ts: string, shown: ChatMessage): Promise<void> {
    const message = redactDeep(shown);
    await this.loadThread(channelId, ts);
    const m = this.getMessage(channelId, ts);
    if (!m) {
      if (!this.missing.has(ts)) {
        this.missing.add(ts);
        this.logger?.warn({ channelId, ts }, 'console message no longer exists; its updates are dropped');
      }
      return;
    }
    if (m.visibleTo !== null)
      throw new ConsoleSurfaceError('cant_update_message', 'ephemeral messages cannot be updated');
    m.text = message.text;
    if (message.blocks) m.blocks = message.blocks;
    else delete m.blocks;
    m.editedAt = this.now();
    this.persist(m.ts, (store) =>
      store.update(m.ts, { text: m.text, blocks: m.blocks ?? null, editedAt: m.editedAt }),
    );
    this.emit({ kind: 'message.updated', message: m });
  }

  async postEphemeral(
    channelId: string,
    userId: string,
    message: ChatMessage,
    threadTs?: string | null,
  ): Promise<void> {
    this.append(channelId, this.botUserId, message, threadTs ?? null, userId, true);
  }

  async addReaction(channelId: string, ts: string, name: string): Promise<void> {
    const m = this.find(channelId, ts);
    if (m.reactions.includes(name)) return;
    m.reactions.push(name);
    this.persist(m.ts, (store) => store.update(m.ts, { reactions: [...m.reactions] }));
    this.emit({ kind: 'reaction.added', message: m, reaction: name });
  }

  async removeReaction(channelId: string, ts: string, name: string): Promise<void> {
    const m = this.find(channelId, ts);
    const i = m.reactions.indexOf(name);
    if (i < 0) return;
    m.reactions.splice(i, 1);
    this.persist(m.ts, (store) => store.update(m.ts, { reactions: [...m.reactions] }));
    this.emit({ kind: 'reaction.removed', message: m, reaction: name });
  }

  /** The console has no file store: the file is shown inline (its beginning) under its comment. */
  async uploadFile(channelId: string, file: ChatFile, threadTs?: string | null): Promise<void> {
    const shown = file.content.length > 2800 ? `${file.content.slice(0, 2800)}\n…` : file.content;
    const bytes = Buffer.byteLength(file.content);
    await this.post(
      channelId,
      {
        text: file.comment ?? file.filename,
        blocks: [
          ...(file.comment ? [{ type: 'section', text: { type: 'mrkdwn', text: file.comment } }] : []),
          {
            type: 'section',
            text: { type: 'mrkdwn', text: `\`\`\`\n${shown.replaceAll('```', "'''")}\n\`\`\`` },
          },
          { type: 'context', elements: [{ type: 'mrkdwn', text: `${file.filename} · ${bytes} bytes` }] },
        ],
      },
      threadTs,
    );
  }

  /** What a person typed into the console; `visibleTo` hides it from others (e.g. a slash command). */
  postUserMessage(
    channelId: string,
    userId: string,
    text: string,
    threadTs: string | null = null,
    visibleTo: string | null = null,
  ): ConsoleMessage {
    return this.append(channelId, userId, { text }, threadTs, visibleTo);
  }

  getMessage(channelId: string, ts: string): ConsoleMessage | undefined {
    const m = this.byTs.get(ts);
    return m && m.channelId === channelId ? m : undefined;
  }

  /** Threads of a channel, oldest first, as `viewerId` sees them (others' ephemerals hidden). */
  threads(channelId: string, viewerId: string, limit = this.maxThreads): ConsoleThread[] {
    const threads = [...(this.channels.get(channelId)?.values() ?? [])];
    const visible = (m: ConsoleMessage) => m.visibleTo === null || m.visibleTo === viewerId;
    return threads
      .filter((t) => visible(t.root))
      .slice(-limit)
      .map((t) => ({
        channelId,
        root: { ...t.root },
        replies: t.replies.filter(visible).map((r) => ({ ...r })),
      }));
  }

  /** Whether a change should be shown to `viewerId`. */
  static visibleTo(change: ConsoleChange, viewerId: string): boolean {
    return change.message.visibleTo === null || change.message.visibleTo === viewerId;
  }

  subscribe(listener: (change: ConsoleChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Unique, increasing Slack-style ts: seconds, a dot, six digits of microseconds. */
  private nextTs(): string {
    let micros = Math.floor(this.now()) * 1000 + this.tsSalt;
    if (micros <= this.lastMicros) micros = this.lastMicros + 1;
    this.lastMicros = micros;
    return `${Math.floor(micros / 1_000_000)}.${String(micros % 1_000_000).padStart(6, '0')}`;
  }

  private append(
    channelId: string,
    userId: string,
    shown: ChatMessage,
    threadTs: string | null,
    visibleTo: string | null,
    recoverThread = false,
  ): ConsoleMessage {
    // Everything the console shows (and keeps) passes the one redaction rule set.
    const message = redactDeep(shown);
    if (!ConsoleChatSurface.isConsoleChannel(channelId)) {
      throw new ConsoleSurfaceError('channel_not_found', `${channelId} is not a console channel`);
    }
    let threads = this.channels.get(channelId);
    if (!threads) {
      threads = new Map();
      this.channels.set(channelId, threads);
    }
    let thread: StoredThread | undefined;
    if (threadTs !== null) {
      // Like Slack, replying to a reply lands in the reply's thread.
      const target = this.byTs.get(threadTs);
      const rootTs = target?.channelId === channelId ? (target.threadTs ?? target.ts) : undefined;
      thread = rootTs === undefined ? undefined : threads.get(rootTs);
      // The console forgets on restart (and drops old threads); a task still answering in
      // such a thread gets a placeholder root under the same ts, so its story stays together.
      if (!thread && recoverThread && TS_FORMAT.test(threadTs) && !this.byTs.has(threadTs)) {
        thread = this.placeholderThread(channelId, threads, threadTs);
      }
      if (!thread) throw new ConsoleSurfaceError('thread_not_found', `no thread ${threadTs} in ${channelId}`);
    }
    const m: ConsoleMessage = {
      channelId,
      ts: this.nextTs(),
      threadTs: thread ? thread.root.ts : null,
      userId,
      text: message.text,
      ...(message.blocks ? { blocks: message.blocks } : {}),
      reactions: [],
      visibleTo,
      postedAt: this.now(),
      editedAt: null,
    };
    this.byTs.set(m.ts, m);
    this.persist(m.ts, (store) => store.insert(toStored(m)));
    if (thread) {
      thread.replies.push(m);
      while (thread.replies.length > this.maxReplies) {
        const dropped = thread.replies.shift();
        if (dropped) this.byTs.delete(dropped.ts);
      }
    } else {
      threads.set(m.ts, { root: m, replies: [] });
      while (threads.size > this.maxThreads) {
        const [oldestTs, oldest] = threads.entries().next().value as [string, StoredThread];
        threads.delete(oldestTs);
        this.byTs.delete(oldest.root.ts);
        for (const r of oldest.replies) this.byTs.delete(r.ts);
      }
    }
    this.emit({ kind: 'message.posted', message: m });
    return m;
  }

  private placeholderThread(channelId: string, threads: Map<string, StoredThread>, ts: string): StoredThread {
    const root: ConsoleMessage = {
      channelId,
      ts,
      threadTs: null,
      userId: this.botUserId,
      text: this.store
        ? '_Earlier conversation (no longer kept)._'
        : '_Earlier conversation (the console keeps threads in memory only)._',
      reactions: [],
      visibleTo: null,
      postedAt: Math.floor(Number(ts) * 1000),
      editedAt: null,
    };
    const thread = { root, replies: [] };
    threads.set(ts, thread);
    this.byTs.set(ts, root);
    this.persist(root.ts, (store) => store.insert(toStored(root)));
    this.emit({ kind: 'message.posted', message: root });
    return thread;
  }

  /** Put stored messages back in memory (oldest thread first, so the newest survive the bound). */
  private adopt(root: StoredConsoleMessage, replies: StoredConsoleMessage[], keep = false): void {
    let threads = this.channels.get(root.channelId);
    if (!threads) {
      threads = new Map();
      this.channels.set(root.channelId, threads);
    }
    if (threads.has(root.ts)) return;
    const thread: StoredThread = { root: fromStored(root), replies: replies.map(fromStored) };
    threads.set(root.ts, thread);
    this.byTs.set(root.ts, thread.root);
    for (const r of thread.replies) this.byTs.set(r.ts, r);
    const last = thread.replies[thread.replies.length - 1] ?? thread.root;
    const micros = Math.round(Number(last.ts) * 1_000_000);
    if (micros > this.lastMicros) this.lastMicros = micros;
    // Restored threads keep their order by ts.
    const sorted = [...threads.entries()].sort(([a], [b]) => a.localeCompare(b));
    threads.clear();
    for (const [k, v] of sorted) threads.set(k, v);
    while (threads.size > this.maxThreads) {
      // A thread read back on demand stays: it is about to be answered or updated.
      const [oldestTs, oldest] = [...threads.entries()].find(([ts]) => !keep || ts !== root.ts) as [
        string,
        StoredThread,
      ];
      threads.delete(oldestTs);
      this.byTs.delete(oldest.root.ts);
      for (const r of oldest.replies) this.byTs.delete(r.ts);
    }
  }

  /**
   * A thread that is not in memory but in the store (it left memory, or another instance on the same
   * database started it) comes back before it is answered or updated.
   */
  async recall(channelId: string, ts: string): Promise<void> {
    await this.loadThread(channelId, ts);
  }

  /** Stored messages are announced here (their ts) once written, for the other instances (see console-sync). */
  onStored(listener: (ts: string) => void): () => void {
    this.storedListeners.add(listener);
    return () => this.storedListeners.delete(listener);
  }

  /**
   * Another instance wrote this message (posted or changed it): read it from the store into memory, and tell
   * this instance's subscribers, as if it had happened here.
   */
  async changedElsewhere(ts: string): Promise<void> {
    if (!this.store || !TS_FORMAT.test(ts)) return;
    const stored = await this.store.find(ts);
    if (!stored) return;
    const micros = Math.round(Number(stored.ts) * 1_000_000);
    if (micros > this.lastMicros) this.lastMicros = micros;
    const known = this.byTs.get(ts);
    if (known) {
      const fresh = fromStored(stored);
      known.text = fresh.text;
      if (fresh.blocks) known.blocks = fresh.blocks;
      else delete known.blocks;
      known.reactions = fresh.reactions;
      known.editedAt = fresh.editedAt;
      this.emit({ kind: 'message.updated', message: known });
      return;
    }
    if (stored.threadTs === null) {
      this.adopt(stored, [], true);
    } else {
      const thread = this.channels.get(stored.channelId)?.get(stored.threadTs);
      if (!thread) {
        // A reply in a thread this instance does not hold: the whole thread comes back with it.
        await this.loadThread(stored.channelId, stored.threadTs);
        const m = this.byTs.get(ts);
        if (m) this.emit({ kind: 'message.posted', message: m });
        return;
      }
      const m = fromStored(stored);
      thread.replies.push(m);
      this.byTs.set(m.ts, m);
      while (thread.replies.length > this.maxReplies) {
        const dropped = thread.replies.shift();
        if (dropped) this.byTs.delete(dropped.ts);
      }
    }
    const m = this.byTs.get(ts);
    if (m) this.emit({ kind: 'message.posted', message: m });
  }

  /** A thread that left memory but is in the store comes back before it is answered or updated. */
  private async loadThread(channelId: string, ts: string): Promise<void> {
    if (!this.store || this.byTs.has(ts) || !TS_FORMAT.test(ts)) return;
    await this.writes;
    const m = await this.store.find(ts).catch(() => undefined);
    if (!m || m.channelId !== channelId) return;
    const rootTs = m.threadTs ?? m.ts;
    const root = m.threadTs ? await this.store.find(rootTs).catch(() => undefined) : m;
    if (!root) return;
    const replies = await this.store
      .replies(channelId, rootTs, this.maxReplies)
      .catch(() => (m.threadTs ? [m] : []));
    this.adopt(root, replies, true);
  }

  private persist(ts: string, write: (store: ConsoleMessageRepository) => Promise<unknown>): void {
    const store = this.store;
    if (!store) return;
    this.writes = this.writes
      .then(() => write(store))
      .then(
        () => {
          for (const listener of this.storedListeners) listener(ts);
        },
        (err: unknown) => this.logger?.warn({ err }, 'console message not stored'),
      );
  }

  private find(channelId: string, ts: string): ConsoleMessage {
    const m = this.getMessage(channelId, ts);
    if (!m) throw new ConsoleSurfaceError('message_not_found', `no message ${ts} in ${channelId}`);
    return m;
  }

  private emit(change: ConsoleChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // A broken subscriber (e.g. a closed SSE stream) must not affect the conversation.
      }
    }
  }
}

/** The two differ only in how a message without blocks is written (null in a row, absent on the wire). */
function toStored(m: ConsoleMessage): StoredConsoleMessage {
  return { ...m, blocks: m.blocks ?? null, reactions: [...m.reactions] };
}

function fromStored(m: StoredConsoleMessage): ConsoleMessage {
  const { blocks, ...rest } = m;
  return {
    ...rest,
    ...(blocks ? { blocks: blocks as NonNullable<ChatMessage['blocks']> } : {}),
    reactions: [...m.reactions],
  };
}
