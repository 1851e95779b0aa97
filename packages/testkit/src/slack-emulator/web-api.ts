import { randomUUID } from 'node:crypto';
import type { SlackIdentity } from './identity.js';
import type { SlackBlock } from './render.js';
import { type FieldValue, jsonField, stringField } from './request-body.js';
import { conversationsReplies } from './shared-files.js';
import type { SlackMessage, Workspace } from './workspace.js';

export type ApiResult = { ok: boolean; [key: string]: unknown };
type Fields = Map<string, FieldValue>;

export interface WebApiDeps {
  workspace: Workspace;
  identity: SlackIdentity;
  baseUrl(): string;
  /** A fresh single-use Socket Mode URL. */
  openSocketUrl(): string;
  isValidTrigger(triggerId: string): boolean;
}

/** Which token type each method needs: everything takes the bot token except Socket Mode's connection opener. */
export function tokenKind(method: string): 'app' | 'bot' {
  return method === 'apps.connections.open' ? 'app' : 'bot';
}

const fail = (error: string): ApiResult => ({ ok: false, error });

function blocksField(fields: Fields): SlackBlock[] | undefined {
  const blocks = jsonField(fields, 'blocks');
  return Array.isArray(blocks) ? (blocks as SlackBlock[]) : undefined;
}

export function messageJson(message: SlackMessage): Record<string, unknown> {
  return {
    type: 'message',
    ts: message.ts,
    user: message.user,
    ...(message.botId ? { bot_id: message.botId } : {}),
    text: message.text,
    ...(message.blocks ? { blocks: message.blocks } : {}),
    ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
    ...(message.reactions.size > 0
      ? { reactions: [...message.reactions].map(([name, users]) => ({ name, users, count: users.length })) }
      : {}),
    ...(message.edits.length > 0 ? { edited: { user: message.user, ts: message.ts } } : {}),
  };
}

/** The Web API methods the emulator answers, each a pure function of the request fields and the workspace. */
export function createWebApi(deps: WebApiDeps): Record<string, (fields: Fields) => ApiResult> {
  const { workspace, identity } = deps;

  const postMessage = (fields: Fields): ApiResult => {
    const channel = stringField(fields, 'channel');
    if (!channel) return fail('channel_not_found');
    const text = stringField(fields, 'text') ?? '';
    const blocks = blocksField(fields);
    if (!text && !blocks) return fail('no_text');
    const threadTs = stringField(fields, 'thread_ts') || undefined;
    if (threadTs && !workspace.find(channel, threadTs)) return fail('thread_not_found');
    const message = workspace.addMessage({
      channel,
      user: identity.botUserId,
      botId: identity.botId,
      text,
      ...(blocks ? { blocks } : {}),
      ...(threadTs ? { threadTs } : {}),
    });
    return { ok: true, channel, ts: message.ts, message: messageJson(message) };
  };

  const reaction = (fields: Fields): { message?: SlackMessage; name: string; error?: string } => {
    const channel = stringField(fields, 'channel') ?? '';
    const ts = stringField(fields, 'timestamp') ?? '';
    const name = (stringField(fields, 'name') ?? '').replace(/^:|:$/g, '');
    if (!name) return { name, error: 'invalid_name' };
    const message = workspace.find(channel, ts);
    if (!message) return { name, error: 'message_not_found' };
    return { message, name };
  };

  return {
    'api.test': () => ({ ok: true }),
    'auth.test': () => ({
      ok: true,
      url: `https://${identity.teamDomain}.slack.com/`,
      team: identity.teamDomain,
      team_id: identity.teamId,
      user: identity.botName,
      user_id: identity.botUserId,
      bot_id: identity.botId,
      app_id: identity.appId,
      is_enterprise_install: false,
    }),
    'apps.connections.open': () => ({ ok: true, url: deps.openSocketUrl() }),
    'chat.postMessage': postMessage,
    'chat.update': (fields) => {
      const channel = stringField(fields, 'channel') ?? '';
      const ts = stringField(fields, 'ts') ?? '';
      const message = workspace.find(channel, ts);
      if (!message) return fail('message_not_found');
      if (message.botId !== identity.botId) return fail('cant_update_message');
      const text = stringField(fields, 'text');
      const blocks = blocksField(fields);
      if (text === undefined && blocks === undefined) return fail('no_text');
      message.edits.push({ text: message.text, ...(message.blocks ? { blocks: message.blocks } : {}) });
      if (text !== undefined) message.text = text;
      if (blocks !== undefined) message.blocks = blocks;
      return { ok: true, channel, ts, text: message.text, message: messageJson(message) };
    },
    'chat.delete': (fields) => {
      const channel = stringField(fields, 'channel') ?? '';
      const ts = stringField(fields, 'ts') ?? '';
      const message = workspace.find(channel, ts);
      if (!message) return fail('message_not_found');
      if (message.botId !== identity.botId) return fail('cant_delete_message');
      message.deleted = true;
      return { ok: true, channel, ts };
    },
    'chat.postEphemeral': (fields) => {
      const channel = stringField(fields, 'channel');
      const user = stringField(fields, 'user');
      if (!channel) return fail('channel_not_found');
      if (!user) return fail('user_not_found');
      const text = stringField(fields, 'text') ?? '';
      const blocks = blocksField(fields);
      if (!text && !blocks) return fail('no_text');
      const threadTs = stringField(fields, 'thread_ts') || undefined;
      const ts = workspace.nextTs();
      workspace.ensureChannel(channel);
      workspace.ephemeralMessages.push({
        channel,
        user,
        ts,
        text,
        via: 'chat.postEphemeral',
        ...(blocks ? { blocks } : {}),
        ...(threadTs ? { threadTs } : {}),
      });
      return { ok: true, message_ts: ts };
    },
    'reactions.add': (fields) => {
      const { message, name, error } = reaction(fields);
      if (!message) return fail(error ?? 'message_not_found');
      const who = message.reactions.get(name) ?? [];
      if (who.includes(identity.botUserId)) return fail('already_reacted');
      message.reactions.set(name, [...who, identity.botUserId]);
      return { ok: true };
    },
    'reactions.remove': (fields) => {
      const { message, name, error } = reaction(fields);
      if (!message) return fail(error ?? 'message_not_found');
      const who = message.reactions.get(name) ?? [];
      if (!who.includes(identity.botUserId)) return fail('no_reaction');
      const rest = who.filter((u) => u !== identity.botUserId);
      if (rest.length === 0) message.reactions.delete(name);
      else message.reactions.set(name, rest);
      return { ok: true };
    },
    'views.open': (fields) => {
      const triggerId = stringField(fields, 'trigger_id') ?? '';
      if (!deps.isValidTrigger(triggerId)) return fail('invalid_trigger_id');
      const view = jsonField(fields, 'view');
      if (typeof view !== 'object' || view === null) return fail('invalid_arguments');
      const id = `V${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`;
      workspace.views.push({ id, triggerId, view });
      return { ok: true, view: { id, ...(view as Record<string, unknown>) } };
    },
    'users.info': (fields) => {
      const user = workspace.users.get(stringField(fields, 'user') ?? '');
      if (!user) return fail('user_not_found');
      return {
        ok: true,
        user: {
          id: user.id,
          team_id: identity.teamId,
          name: user.name,
          real_name: user.realName ?? user.name,
          is_bot: user.isBot ?? false,
          is_admin: user.isAdmin ?? false,
          tz: user.tz ?? 'UTC',
          profile: { display_name: user.name, real_name: user.realName ?? user.name },
        },
      };
    },
    'conversations.info': (fields) => {
      const channel = workspace.channels.get(stringField(fields, 'channel') ?? '');
      if (!channel) return fail('channel_not_found');
      return {
        ok: true,
        channel: {
          id: channel.id,
          name: channel.name,
          is_channel: !channel.isPrivate,
          is_private: channel.isPrivate,
          is_member: true,
        },
      };
    },
    'conversations.replies': conversationsReplies(workspace, deps.baseUrl, messageJson),
    'files.getUploadURLExternal': (fields) => {
      const filename = stringField(fields, 'filename');
      const length = Number(stringField(fields, 'length'));
      if (!filename || !Number.isFinite(length) || length < 0) return fail('invalid_arguments');
      const id = `F${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`;
      workspace.files.set(id, { id, filename, length });
      return { ok: true, upload_url: `${deps.baseUrl()}/upload/${id}`, file_id: id };
    },
    'files.completeUploadExternal': (fields) => {
      const list = jsonField(fields, 'files');
      if (!Array.isArray(list) || list.length === 0) return fail('invalid_arguments');
      const files = [];
      for (const entry of list) {
        const id = typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined;
        const file = typeof id === 'string' ? workspace.files.get(id) : undefined;
        if (!file || file.content === undefined) return fail('file_not_found');
        const title = (entry as { title?: unknown }).title;
        if (typeof title === 'string') file.title = title;
        files.push(file);
      }
      const channel = stringField(fields, 'channel_id');
      if (channel) {
        const threadTs = stringField(fields, 'thread_ts') || undefined;
        workspace.addMessage({
          channel,
          user: identity.botUserId,
          botId: identity.botId,
          text: stringField(fields, 'initial_comment') ?? '',
          files,
          ...(threadTs ? { threadTs } : {}),
        });
      }
      return {
        ok: true,
        files: files.map((f) => ({ id: f.id, name: f.filename, title: f.title ?? f.filename })),
      };
    },
  };
}
