import { z } from 'zod';
import type { ChatMessage, ChatSurface } from '../chat/chat-surface.js';
import type { InboundRequest, RequestExtras } from '../chat/inbound.js';
import { type SlackFileRef, slackFileSchema } from './slack-files.js';

/** The parts of Slack payloads we act on; anything else in them is ignored. */
export const appMentionEventSchema = z.object({
  type: z.literal('app_mention'),
  user: z.string().min(1),
  channel: z.string().min(1),
  text: z.string(),
  ts: z.string().min(1),
  thread_ts: z.string().optional(),
  bot_id: z.string().optional(),
  files: z.array(slackFileSchema).max(50).optional(),
});

export const messageEventSchema = z.object({
  type: z.literal('message'),
  subtype: z.string().optional(),
  user: z.string().optional(),
  bot_id: z.string().optional(),
  channel: z.string().min(1),
  text: z.string().optional(),
  ts: z.string().min(1),
  thread_ts: z.string().optional(),
  channel_type: z.string().optional(),
  files: z.array(slackFileSchema).max(50).optional(),
});

export const slashCommandSchema = z.object({
  command: z.string(),
  text: z.string(),
  user_id: z.string().min(1),
  user_name: z.string().optional(),
  channel_id: z.string().min(1),
});

export const blockActionSchema = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: z.string().min(1), username: z.string().optional(), name: z.string().optional() }),
  channel: z.object({ id: z.string().min(1) }).optional(),
  container: z
    .object({
      channel_id: z.string().optional(),
      message_ts: z.string().optional(),
      thread_ts: z.string().optional(),
    })
    .optional(),
  message: z.object({ ts: z.string(), thread_ts: z.string().optional() }).optional(),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().optional() })).min(1),
});

/** Subtypes that are still a person writing in the thread. */
const PERSON_MESSAGE_SUBTYPES = new Set([undefined, 'thread_broadcast', 'file_share']);

export interface InboundContext {
  surface: ChatSurface;
  botUserId: string | undefined;
  /** The app's name as people see it in Slack ("BematicManager"), when known. */
  appName?: string;
  now(): number;
  /** Thread context and attachments of a message, loaded when a task starts. */
  extras?(
    message: {
      channel: string;
      ts: string;
      threadTs?: string;
      files?: SlackFileRef[];
    },
    options: { thread: boolean },
  ): Promise<RequestExtras>;
}

function extrasOf(
  ctx: InboundContext,
  event: { channel: string; ts: string; thread_ts?: string; files?: SlackFileRef[] },
): Pick<InboundRequest, 'extras'> {
  const load = ctx.extras;
  if (!load) return {};
  const message = {
    channel: event.channel,
    ts: event.ts,
    ...(event.thread_ts ? { threadTs: event.thread_ts } : {}),
    ...(event.files ? { files: event.files } : {}),
  };
  return { extras: (options) => load(message, options) };
}

/** Removes every mention of the bot ("<@U123>" or "<@U123|name>") and the spacing around it. */
export function stripBotMention(text: string, botUserId: string | undefined): string {
  if (!botUserId) return text.trim();
  const escaped = botUserId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`\\s*<@${escaped}(?:\\|[^>]*)?>\\s*`, 'g'), ' ').trim();
}

function ephemeralResponder(ctx: InboundContext, channelId: string, userId: string, threadTs: string | null) {
  return (message: ChatMessage) => ctx.surface.postEphemeral(channelId, userId, message, threadTs);
}

/** A person's message (a mention, a DM, a thread reply) as a request, answered ephemerally in its thread. */
function personRequest(
  ctx: InboundContext,
  kind: 'mention' | 'thread_reply',
  where: { userId: string; channelId: string; threadTs: string; messageTs: string },
  text: string,
): InboundRequest {
  return {
    kind,
    surface: ctx.surface,
    ...where,
    text,
    receivedAt: ctx.now(),
    respond: ephemeralResponder(ctx, where.channelId, where.userId, where.threadTs),
  };
}

export function mentionRequest(
  event: z.infer<typeof appMentionEventSchema>,
  ctx: InboundContext,
): InboundRequest {
  const threadTs = event.thread_ts ?? event.ts;
  const where = { userId: event.user, channelId: event.channel, threadTs, messageTs: event.ts };
  return {
    ...personRequest(ctx, 'mention', where, stripBotMention(event.text, ctx.botUserId)),
    ...extrasOf(ctx, event),
  };
}

/**
 * A person writing to the app directly (channel_type "im"): a new request at the top level, a
 * continuation inside a thread. Null for edits, other bots and our own posts.
 */
export function directMessageRequest(
  event: z.infer<typeof messageEventSchema>,
  ctx: InboundContext,
): InboundRequest | null {
  if (event.channel_type !== 'im') return null;
  if (!PERSON_MESSAGE_SUBTYPES.has(event.subtype)) return null;
  if (event.bot_id || !event.user || event.user === ctx.botUserId) return null;
  const inThread = event.thread_ts !== undefined && event.thread_ts !== event.ts;
  const threadTs = event.thread_ts ?? event.ts;
  const where = { userId: event.user, channelId: event.channel, threadTs, messageTs: event.ts };
  const text = stripBotMention(event.text ?? '', ctx.botUserId);
  return {
    ...personRequest(ctx, inThread ? 'thread_reply' : 'mention', where, text),
    direct: true,
    ...extrasOf(ctx, event),
  };
}

/**
 * A person's reply inside a thread, or null for everything else: top-level messages, edits and
 * deletions, other bots, our own posts, and replies that mention the bot (those arrive as app_mention).
 */
export function threadReplyRequest(
  event: z.infer<typeof messageEventSchema>,
  ctx: InboundContext,
): InboundRequest | null {
  if (!event.thread_ts || event.thread_ts === event.ts) return null;
  if (!PERSON_MESSAGE_SUBTYPES.has(event.subtype)) return null;
  if (event.bot_id || !event.user || event.user === ctx.botUserId) return null;
  const text = event.text ?? '';
  if (ctx.botUserId && text.includes(`<@${ctx.botUserId}`)) return null;
  const where = {
    userId: event.user,
    channelId: event.channel,
    threadTs: event.thread_ts,
    messageTs: event.ts,
  };
  return personRequest(ctx, 'thread_reply', where, text.trim());
}

export function slashRequest(
  command: z.infer<typeof slashCommandSchema>,
  ctx: InboundContext,
  respond: (message: ChatMessage) => Promise<void>,
): InboundRequest {
  return {
    kind: 'slash',
    surface: ctx.surface,
    userId: command.user_id,
    ...(command.user_name ? { userName: command.user_name } : {}),
    channelId: command.channel_id,
    text: command.text.trim(),
    threadTs: null,
    messageTs: null,
    ...(ctx.appName ? { appName: ctx.appName } : {}),
    receivedAt: ctx.now(),
    respond,
  };
}

export function actionRequest(
  body: z.infer<typeof blockActionSchema>,
  actionId: string,
  ctx: InboundContext,
  respond: (message: ChatMessage) => Promise<void>,
): InboundRequest | null {
  const action = body.actions.find((a) => a.action_id === actionId);
  const channelId = body.channel?.id ?? body.container?.channel_id;
  if (!action || !channelId) return null;
  const messageTs = body.message?.ts ?? body.container?.message_ts ?? null;
  const userName = body.user.username ?? body.user.name;
  return {
    kind: 'action',
    surface: ctx.surface,
    userId: body.user.id,
    ...(userName ? { userName } : {}),
    channelId,
    text: action.action_id,
    threadTs: body.message?.thread_ts ?? body.container?.thread_ts ?? messageTs,
    messageTs,
    ...(action.value !== undefined ? { actionValue: action.value } : {}),
    receivedAt: ctx.now(),
    respond,
  };
}

/** A `message` event: a direct message to the app, a reply in a channel thread, or nothing for us. */
export function messageRequest(
  event: z.infer<typeof messageEventSchema>,
  ctx: InboundContext,
): InboundRequest | null {
  return event.channel_type === 'im' ? directMessageRequest(event, ctx) : threadReplyRequest(event, ctx);
}
