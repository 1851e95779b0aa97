import type { Logger } from 'pino';
import { z } from 'zod';
import type { ChatMessage } from '../chat/chat-surface.js';
import type { InboundHandler, InboundRequest } from '../chat/inbound.js';
import { ConsoleChatSurface, ConsoleSurfaceError } from '../console/console-surface.js';
import { HttpError } from './http-error.js';

const consoleChannel = z
  .string()
  .max(200)
  .refine(ConsoleChatSurface.isConsoleChannel, 'must be a console channel (console:…)');
const ts = z.string().regex(/^\d+\.\d{6}$/, 'must be a message timestamp like 1700000000.000100');

export const ConsoleMessageBody = z.object({
  text: z.string().trim().min(1, 'type something').max(8000),
  threadTs: ts.nullish(),
  channelId: consoleChannel.optional(),
});
export type ConsoleMessageBody = z.infer<typeof ConsoleMessageBody>;

export const ConsoleActionBody = z.object({
  actionId: z.string().min(1).max(255),
  value: z.string().max(2000).optional(),
  /** The message carrying the button. */
  messageTs: ts.optional(),
  channelId: consoleChannel.optional(),
});
export type ConsoleActionBody = z.infer<typeof ConsoleActionBody>;

export interface ConsoleUser {
  userId: string;
  userName: string;
  channelId: string;
}

const SLASH = /^\/bm(?:\s+|$)/i;
/** "@BematicManager code fix …" typed out in full: the mention is implicit in the console. */
const LEADING_MENTION = /^@\S+\s+/;

/**
 * Turns what a person types into the console into the same InboundRequest a
 * Slack mention, thread reply, slash command or button click would become.
 */
export class ConsoleApi {
  constructor(
    private readonly surface: ConsoleChatSurface,
    private readonly inbound: InboundHandler,
    private readonly user: ConsoleUser,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  async message(
    body: ConsoleMessageBody,
  ): Promise<{ kind: InboundRequest['kind']; ts: string; threadTs: string | null }> {
    const channelId = body.channelId ?? this.user.channelId;
    const threadTs = body.threadTs ?? null;
    const text = body.text.trim();
    try {
      // The thread may have been started through another instance: it is read from the store first.
      if (threadTs !== null) await this.surface.recall(channelId, threadTs);
      if (SLASH.test(text)) {
        // Slack never shows a slash command to others; the console echoes it to its typist.
        const echo = this.surface.postUserMessage(
          channelId,
          this.user.userId,
          text,
          threadTs,
          this.user.userId,
        );
        const rootTs = echo.threadTs;
        this.dispatch({
          kind: 'slash',
          channelId,
          text: text.replace(SLASH, '').trim(),
          threadTs: rootTs,
          messageTs: null,
        });
        return { kind: 'slash', ts: echo.ts, threadTs: rootTs };
      }
      const own = this.surface.postUserMessage(channelId, this.user.userId, text, threadTs);
      if (own.threadTs !== null) {
        this.dispatch({ kind: 'thread_reply', channelId, text, threadTs: own.threadTs, messageTs: own.ts });
        return { kind: 'thread_reply', ts: own.ts, threadTs: own.threadTs };
      }
      this.dispatch({
        kind: 'mention',
        channelId,
        text: text.replace(LEADING_MENTION, ''),
        threadTs: own.ts,
        messageTs: own.ts,
      });
      return { kind: 'mention', ts: own.ts, threadTs: own.ts };
    } catch (err) {
      throw asHttpError(err);
    }
  }

  action(body: ConsoleActionBody): { threadTs: string | null } {
    const channelId = body.channelId ?? this.user.channelId;
    let threadTs: string | null = null;
    if (body.messageTs !== undefined) {
      const m = this.surface.getMessage(channelId, body.messageTs);
      if (!m) throw new HttpError(404, 'message_not_found', `no message ${body.messageTs} in ${channelId}`);
      threadTs = m.threadTs ?? m.ts;
    }
    this.dispatch({
      kind: 'action',
      channelId,
      text: body.actionId,
      threadTs,
      messageTs: null,
      ...(body.value !== undefined ? { actionValue: body.value } : {}),
    });
    return { threadTs };
  }

  /** The request is accepted at once; the handler answers in the thread, as in Slack. */
  private dispatch(
    r: Pick<InboundRequest, 'kind' | 'channelId' | 'text' | 'threadTs' | 'messageTs' | 'actionValue'>,
  ): void {
    const request: InboundRequest = {
      ...r,
      surface: this.surface,
      userId: this.user.userId,
      userName: this.user.userName,
      receivedAt: this.now(),
      respond: async (message: ChatMessage) => {
        await this.surface.postEphemeral(r.channelId, this.user.userId, message, r.threadTs);
      },
    };
    this.inbound.handle(request).catch((err: unknown) => {
      this.logger.error({ err, kind: r.kind }, 'inbound handler rejected a console request');
    });
  }
}

function asHttpError(err: unknown): unknown {
  if (err instanceof ConsoleSurfaceError) {
    return new HttpError(err.code === 'channel_not_found' ? 400 : 404, err.code, err.message);
  }
  return err;
}
