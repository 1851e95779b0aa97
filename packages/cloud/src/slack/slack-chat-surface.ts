import { KeyedSequence, redactDeep } from '@bematic/protocol';
import type { webApi } from '@slack/bolt';
import type { Logger } from 'pino';
import type {
  ChatFile,
  ChatMessage,
  ChatSurface,
  PostedMessage,
  UpdateOptions,
} from '../chat/chat-surface.js';

type WebClient = webApi.WebClient;

/** The Slack error code inside a Web API platform error, if that is what was thrown. */
export function slackErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const data = (error as { data?: unknown }).data;
  if (typeof data !== 'object' || data === null) return undefined;
  const code = (data as { error?: unknown }).error;
  return typeof code === 'string' ? code : undefined;
}

/** Slack allows about one chat.postMessage / chat.update per second in one channel. */
export const SLACK_CHANNEL_INTERVAL_MS = 1000;

/**
 * ChatSurface over Slack's Web API. Posts to one channel keep their order. A scheduled `update` (a task
 * message) makes one call on a client that rejects a 429 at once (with Retry-After) instead of retrying it:
 * when a task message is updated is decided by the notifications' `UpdateScheduler`, which honours the
 * Retry-After for the whole workspace. Every other call, other edits included, goes through Bolt's client,
 * which waits out Retry-After and retries.
 */
export class SlackChatSurface implements ChatSurface {
  readonly name = 'slack' as const;
  private readonly posts = new KeyedSequence();

  constructor(
    private readonly client: WebClient,
    private readonly logger: Logger,
    private readonly updateClient: WebClient = client,
  ) {}

  // Everything shown in Slack passes the one redaction rule set: a secret in a result, a prompt or an
  // error never reaches the channel.
  post(channelId: string, shown: ChatMessage, threadTs?: string | null): Promise<PostedMessage> {
    const message = redactDeep(shown);
    return this.posts.run(channelId, async () => {
      const result = await this.client.chat.postMessage({
        channel: channelId,
        text: message.text,
        ...(message.blocks ? { blocks: message.blocks as webApi.KnownBlock[] } : {}),
        ...(threadTs ? { thread_ts: threadTs } : {}),
      });
      if (!result.ts) throw new Error('chat.postMessage returned no ts');
      return { channelId: result.channel ?? channelId, ts: result.ts };
    });
  }

  async update(
    channelId: string,
    ts: string,
    shown: ChatMessage,
    options: UpdateOptions = {},
  ): Promise<void> {
    const message = redactDeep(shown);
    const client = options.scheduled ? this.updateClient : this.client;
    try {
      await client.chat.update({
        channel: channelId,
        ts,
        text: message.text,
        ...(message.blocks ? { blocks: message.blocks as webApi.KnownBlock[] } : {}),
      });
    } catch (error) {
      this.logger.warn({ channelId, ts, err: error }, 'slack: chat.update failed');
      throw error;
    }
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
