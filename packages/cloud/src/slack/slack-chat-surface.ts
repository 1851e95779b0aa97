import { redactDeep } from '@bematic/protocol';
import type { webApi } from '@slack/bolt';
import type { Logger } from 'pino';
import type { ChatFile, ChatMessage, ChatSurface, PostedMessage } from '../chat/chat-surface.js';

type WebClient = webApi.WebClient;

/** The Slack error code inside a Web API platform error, if that is what was thrown. */
export function slackErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const data = (error as { data?: unknown }).data;
  if (typeof data !== 'object' || data === null) return undefined;
  const code = (data as { error?: unknown }).error;
  return typeof code === 'string' ? code : undefined;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

interface UpdateSlot {
  running: boolean;
  /** The newest content not yet sent; older unsent content is superseded. */
  next: { message: ChatMessage; waiters: Waiter[] } | null;
}

/**
 * ChatSurface over Slack's Web API. Rate limits are honoured by the WebClient (it waits Retry-After and
 * retries); on top of that, updates to one message are serialised and coalesced so that under a 429 storm
 * the newest content is the one that lands, and posts to one channel keep their order.
 */
export class SlackChatSurface implements ChatSurface {
  readonly name = 'slack' as const;
  private readonly updates = new Map<string, UpdateSlot>();
  private readonly postChains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly client: WebClient,
    private readonly logger: Logger,
  ) {}

  // Everything shown in Slack passes the one redaction rule set: a secret in a result, a prompt or an
  // error never reaches the channel.
  post(channelId: string, shown: ChatMessage, threadTs?: string | null): Promise<PostedMessage> {
    const message = redactDeep(shown);
    const previous = this.postChains.get(channelId) ?? Promise.resolve();
    const posted = previous
      .catch(() => undefined)
      .then(async () => {
        const result = await this.client.chat.postMessage({
          channel: channelId,
          text: message.text,
          ...(message.blocks ? { blocks: message.blocks as webApi.KnownBlock[] } : {}),
          ...(threadTs ? { thread_ts: threadTs } : {}),
        });
        if (!result.ts) throw new Error('chat.postMessage returned no ts');
        return { channelId: result.channel ?? channelId, ts: result.ts };
      });
    this.postChains.set(channelId, posted);
    void posted
      .finally(() => {
        if (this.postChains.get(channelId) === posted) this.postChains.delete(channelId);
      })
      .catch(() => undefined);
    return posted;
  }

  /** Resolves once this content, or newer content for the same message, is shown. */
  update(channelId: string, ts: string, shown: ChatMessage): Promise<void> {
    const message = redactDeep(shown);
    const key = `${channelId}:${ts}`;
    let slot = this.updates.get(key);
    if (!slot) {
      slot = { running: false, next: null };
      this.updates.set(key, slot);
    }
    const done = new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      if (slot.next) {
        slot.next.message = message;
        slot.next.waiters.push(waiter);
      } else {
        slot.next = { message, waiters: [waiter] };
      }
    });
    if (!slot.running) void this.drain(key, channelId, ts, slot);
    return done;
  }

  private async drain(key: string, channelId: string, ts: string, slot: UpdateSlot): Promise<void> {
    slot.running = true;
    while (slot.next) {
      const { message, waiters } = slot.next;
      slot.next = null;
      try {
        await this.client.chat.update({
          channel: channelId,
          ts,
          text: message.text,
          ...(message.blocks ? { blocks: message.blocks as webApi.KnownBlock[] } : {}),
        });
        for (const w of waiters) w.resolve();
      } catch (error) {
        this.logger.warn({ channelId, ts, err: error }, 'slack: chat.update failed');
        for (const w of waiters) w.reject(error);
      }
    }
    slot.running = false;
    this.updates.delete(key);
  }

  async postEphemeral(
    channelId: string,
    userId: string,
    shown: ChatMessage,
    threadTs?: string | null,
  ): Promise<void> {
    const message = redactDeep(shown);
    await this.client.chat.postEphemeral({
      channel: channelId,
      user: userId,
      text: message.text,
      ...(message.blocks ? { blocks: message.blocks as webApi.KnownBlock[] } : {}),
      ...(threadTs ? { thread_ts: threadTs } : {}),
    });
  }

  async addReaction(channelId: string, ts: string, name: string): Promise<void> {
    try {
      await this.client.reactions.add({ channel: channelId, timestamp: ts, name });
    } catch (error) {
      if (slackErrorCode(error) !== 'already_reacted') throw error;
    }
  }

  async removeReaction(channelId: string, ts: string, name: string): Promise<void> {
    try {
      await this.client.reactions.remove({ channel: channelId, timestamp: ts, name });
    } catch (error) {
      if (slackErrorCode(error) !== 'no_reaction') throw error;
    }
  }

  async uploadFile(channelId: string, file: ChatFile, threadTs?: string | null): Promise<void> {
    const common = {
      channel_id: channelId,
      filename: file.filename,
      content: file.content,
      ...(file.title ? { title: file.title } : {}),
      ...(file.comment ? { initial_comment: file.comment } : {}),
    };
    await this.client.files.uploadV2(threadTs ? { ...common, thread_ts: threadTs } : common);
  }
}
