import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultIdentity, type SlackIdentity } from './identity.js';
import { type EnforcedLimit, type RateLimitRule, RateLimits } from './rate-limits.js';
import { blocksToText, renderMessages, type SlackBlock } from './render.js';
import { type FieldValue, jsonField, parseBody, readRaw, stringField } from './request-body.js';
import { type AttachedFile, fileJson, serveFile, storeAttachedFiles } from './shared-files.js';
import { encodeHttpPayload, type HttpPayload, signSlackRequest } from './signing.js';
import { type Ack, type EnvelopeType, SocketModeEndpoint } from './socket-mode.js';
import { type ApiResult, createWebApi, tokenKind } from './web-api.js';
import {
  type EphemeralMessage,
  type MessageVersion,
  type OpenedView,
  type SlackChannel,
  type SlackFile,
  type SlackMessage,
  type SlackUser,
  Workspace,
} from './workspace.js';

export interface SlackEmulatorOptions {
  identity?: Partial<SlackIdentity>;
  /** How long the app has to ack an envelope (Slack gives 3 seconds). */
  ackTimeoutMs?: number;
  now?: () => number;
  users?: SlackUser[];
}

export interface CallRecord {
  method: string;
  params: Record<string, string>;
  status: 'ok' | 'error' | 'rate_limited' | 'auth_error';
  error?: string;
  at: number;
}

/** A message as a reader sees it now: current content, edit history, reactions. */
export interface MessageView {
  channel: string;
  ts: string;
  threadTs?: string;
  user: string;
  userName: string;
  isBot: boolean;
  text: string;
  blocks?: SlackBlock[];
  /** blocks flattened to lines of text, or the text when there are no blocks. */
  readable: string;
  reactions: Array<{ name: string; users: string[] }>;
  edits: MessageVersion[];
  files: Array<{ id: string; name: string; title?: string; size: number }>;
}

export interface MentionArgs {
  user: string;
  channel: string;
  text: string;
  threadTs?: string;
  /** Files the person attaches to the message (delivered with subtype file_share). */
  files?: AttachedFile[];
}

export interface MessageArgs extends MentionArgs {
  /** Set to post as another bot (the app must ignore it). */
  botId?: string;
}

export interface SlashCommandArgs {
  user: string;
  channel: string;
  command?: string;
  text: string;
}

export interface ClickButtonArgs {
  user: string;
  channel: string;
  messageTs: string;
  actionId: string;
  value?: string;
  blockId?: string;
}

export interface Delivered {
  ack: Ack;
}
export interface DeliveredMessage extends Delivered {
  ts: string;
  threadTs: string | null;
}
export interface DeliveredInteraction extends Delivered {
  triggerId: string;
  responseUrl: string;
}

export interface HttpDeliveryOptions {
  /** Seconds since epoch for X-Slack-Request-Timestamp (default: now). */
  timestampSec?: number;
  /** Send this signature instead of the correct one. */
  signature?: string;
  /** Deliver as Slack's retry number N (X-Slack-Retry-Num / X-Slack-Retry-Reason), as after a missed ack. */
  retryNum?: number;
  retryReason?: string;
}

export interface HttpDeliveryResult {
  status: number;
  body: string;
}

interface ResponseTarget {
  channel: string;
  user: string;
  messageTs?: string;
  threadTs?: string;
}

type Fields = Map<string, FieldValue>;

function paramsOf(fields: Fields): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of fields) {
    if (key === 'token') continue;
    params[key] = typeof value === 'string' ? value : `<${value.length} bytes>`;
  }
  return params;
}

/** The channel_type Slack puts on message events. */
function channelType(channel: SlackChannel): 'im' | 'group' | 'channel' {
  if (channel.isIm) return 'im';
  return channel.isPrivate ? 'group' : 'channel';
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * A Slack workspace on loopback: the Web API under /api/, Socket Mode over WebSocket, response_urls,
 * file uploads, and helpers to act as a person (mention, reply, slash command, button click) and to
 * read the channel the way that person would.
 */
export class SlackEmulator {
  readonly identity: SlackIdentity;
  private readonly workspace: Workspace;
  private readonly limits: RateLimits;
  private readonly socketMode: SocketModeEndpoint;
  private readonly api: Record<string, (fields: Fields) => ApiResult>;
  private readonly callLog: CallRecord[] = [];
  private readonly triggers = new Set<string>();
  private readonly responseTargets = new Map<string, ResponseTarget>();
  private readonly changes = new EventEmitter();
  private readonly now: () => number;
  private origin = '';

  constructor(
    private readonly server: Server,
    options: SlackEmulatorOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.identity = defaultIdentity(options.identity);
    this.workspace = new Workspace(this.now);
    this.limits = new RateLimits(this.now);
    this.changes.setMaxListeners(0);
    this.socketMode = new SocketModeEndpoint({
      appId: this.identity.appId,
      ackTimeoutMs: options.ackTimeoutMs ?? 3000,
      wsBaseUrl: () => this.origin.replace(/^http/, 'ws'),
      onChange: () => this.changes.emit('change'),
    });
    this.api = createWebApi({
      workspace: this.workspace,
      identity: this.identity,
      baseUrl: () => this.origin,
      openSocketUrl: () => this.socketMode.issueUrl(),
      isValidTrigger: (id) => this.triggers.has(id),
    });
    this.workspace.users.set(this.identity.botUserId, {
      id: this.identity.botUserId,
      name: this.identity.botName,
      isBot: true,
    });
    for (const user of options.users ?? []) this.addUser(user);
    server.on('request', (req, res) => {
      this.route(req, res).catch((error: unknown) => {
        sendJson(res, 500, { ok: false, error: 'internal_error', detail: String(error) });
      });
    });
    server.on('upgrade', (req, socket, head) => {
      if (!this.socketMode.handleUpgrade(req, socket, head)) socket.destroy();
    });
  }

  /** @internal called once the server listens. */
  setOrigin(origin: string): void {
    this.origin = origin;
  }

  /** http://127.0.0.1:<port> */
  get url(): string {
    return this.origin;
  }
  /** What SLACK_API_URL should be set to. */
  get apiUrl(): string {
    return `${this.origin}/api/`;
  }
  get botToken(): string {
    return this.identity.botToken;
  }
  get appToken(): string {
    return this.identity.appToken;
  }
  get botUserId(): string {
    return this.identity.botUserId;
  }
  /** Socket Mode connections currently open. */
  get socketConnections(): number {
    return this.socketMode.connected;
  }
  /** Socket Mode connections accepted so far (reconnects included). */
  get socketConnectionsOpened(): number {
    return this.socketMode.connectionCount;
  }
  /** Envelopes the app failed to ack in time. */
  get unacked(): ReadonlyArray<{ envelopeId: string; type: string }> {
    return this.socketMode.unacked;
  }

  // ---- setup ----

  addUser(user: SlackUser): void {
    this.workspace.users.set(user.id, { ...user });
  }

  addChannel(channel: Partial<SlackChannel> & { id: string }): void {
    this.workspace.channels.set(channel.id, {
      id: channel.id,
      name: channel.name ?? channel.id.toLowerCase(),
      isPrivate: channel.isPrivate ?? channel.id.startsWith('D'),
      isIm: channel.isIm ?? channel.id.startsWith('D'),
    });
  }

  /** Answer 429 with Retry-After for the next `count` calls of `method` (or all calls for `forMs`); '*' = every method. */
  rateLimit(method: string, rule: RateLimitRule = {}): void {
    this.limits.set(method, rule);
  }

  /** Enforce Slack's own limits for a method (opt-in): calls over them get 429 with Retry-After, as in Slack. */
  enforceRateLimit(method: string, limit: EnforcedLimit): void {
    this.limits.enforce(method, limit);
  }

  clearRateLimits(method?: string): void {
    this.limits.clear(method);
  }

  waitForConnection(timeoutMs?: number): Promise<void> {
    return this.socketMode.waitForConnection(timeoutMs);
  }

  /** Sends Socket Mode "disconnect" to every client, which should reconnect through apps.connections.open. */
  requestReconnect(reason?: string): void {
    this.socketMode.requestReconnect(reason);
  }

  // ---- acting as a person, over Socket Mode ----

  /** A person @-mentions the bot: delivers the `message` event and the `app_mention` event; resolves with the app_mention ack. */
  async mention(args: MentionArgs): Promise<DeliveredMessage> {
    const { message, events } = this.prepareMention(args);
    const [, ack] = await Promise.all(events.map((event) => this.socketMode.deliver('events_api', event)));
    return { ts: message.ts, threadTs: message.threadTs ?? null, ack: ack as Ack };
  }

  /** A person posts a message (a thread reply when threadTs is set). */
  async message(args: MessageArgs): Promise<DeliveredMessage> {
    const { message, event } = this.prepareMessage(args);
    const ack = await this.socketMode.deliver('events_api', event);
    return { ts: message.ts, threadTs: message.threadTs ?? null, ack };
  }

  /** A person runs a slash command (default /bm); resolves with the ack (whose payload is the immediate reply, if any). */
  async slashCommand(args: SlashCommandArgs): Promise<DeliveredInteraction> {
    const payload = this.prepareSlashCommand(args);
    const ack = await this.socketMode.deliver('slash_commands', payload);
    this.recordAckReply(ack, args);
    return { ack, triggerId: String(payload.trigger_id), responseUrl: String(payload.response_url) };
  }

  /** A person clicks a button on a message. */
  async clickButton(args: ClickButtonArgs): Promise<DeliveredInteraction> {
    const payload = this.prepareButtonClick(args);
    const ack = await this.socketMode.deliver('interactive', payload);
    return { ack, triggerId: String(payload.trigger_id), responseUrl: String(payload.response_url) };
  }

  /** Sends any envelope as is (malformed ones included) and resolves with the ack; `retryAttempt` marks a retry. */
  deliverEnvelope(
    type: EnvelopeType,
    payload: Record<string, unknown>,
    retry?: { attempt: number; reason?: string },
  ): Promise<Ack> {
    return this.socketMode.deliver(
      type,
      payload,
      retry ? { attempt: retry.attempt, reason: retry.reason ?? 'timeout' } : undefined,
    );
  }

  /** Wraps an event in the event_callback Slack would send, for deliverEnvelope or deliverHttp. */
  eventCallback(event: Record<string, unknown>): HttpPayload {
    return this.callback(event);
  }

  // ---- the same, as HTTP payloads for an app in HTTP mode ----

  /** Records the person's message and returns the event_callback payloads Slack would post (message, app_mention). */
  prepareMention(args: MentionArgs): { message: MessageView; events: HttpPayload[] } {
    const mentionTag = `<@${this.identity.botUserId}>`;
    const text = args.text.includes(mentionTag) ? args.text : `${mentionTag} ${args.text}`;
    const stored = this.postAsUser({ ...args, text });
    const base = this.messageEvent(stored);
    const mention = { ...base, type: 'app_mention' };
    delete (mention as { channel_type?: string }).channel_type;
    return { message: this.view(stored), events: [this.callback(base), this.callback(mention)] };
  }

  prepareMessage(args: MessageArgs): { message: MessageView; event: HttpPayload } {
    const stored = this.postAsUser(args);
    return { message: this.view(stored), event: this.callback(this.messageEvent(stored)) };
  }

  prepareSlashCommand(args: SlashCommandArgs): HttpPayload {
    const user = this.workspace.ensureUser(args.user);
    const channel = this.workspace.ensureChannel(args.channel);
    return {
      token: 'emulator-verification-token',
      team_id: this.identity.teamId,
      team_domain: this.identity.teamDomain,
      channel_id: channel.id,
      channel_name: channel.name,
      user_id: user.id,
      user_name: user.name,
      command: args.command ?? '/bm',
      text: args.text,
      api_app_id: this.identity.appId,
      is_enterprise_install: 'false',
      response_url: this.issueResponseUrl({ channel: channel.id, user: user.id }),
      trigger_id: this.issueTrigger(),
    };
  }

  prepareButtonClick(args: ClickButtonArgs): HttpPayload {
    const user = this.workspace.ensureUser(args.user);
    const channel = this.workspace.ensureChannel(args.channel);
    const message = this.workspace.find(args.channel, args.messageTs);
    if (!message) throw new Error(`no message ${args.messageTs} in ${args.channel} to click on`);
    const actionTs = this.workspace.nextTs();
    return {
      type: 'block_actions',
      user: { id: user.id, username: user.name, name: user.name, team_id: this.identity.teamId },
      api_app_id: this.identity.appId,
      token: 'emulator-verification-token',
      container: {
        type: 'message',
        message_ts: message.ts,
        channel_id: channel.id,
        is_ephemeral: false,
        ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
      },
      trigger_id: this.issueTrigger(),
      team: { id: this.identity.teamId, domain: this.identity.teamDomain },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: channel.id, name: channel.name },
      message: {
        type: 'message',
        ts: message.ts,
        user: message.user,
        ...(message.botId ? { bot_id: message.botId } : {}),
        text: message.text,
        ...(message.blocks ? { blocks: message.blocks } : {}),
        ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
      },
      state: { values: {} },
      response_url: this.issueResponseUrl({
        channel: channel.id,
        user: user.id,
        messageTs: message.ts,
        ...(message.threadTs ? { threadTs: message.threadTs } : {}),
      }),
      actions: [
        {
          action_id: args.actionId,
          block_id: args.blockId ?? 'actions',
          text: { type: 'plain_text', text: args.actionId, emoji: true },
          value: args.value ?? '',
          type: 'button',
          action_ts: actionTs,
        },
      ],
    };
  }

  /** Posts a payload to an HTTP-mode app, signed exactly as Slack signs it. */
  async deliverHttp(
    appUrl: string,
    signingSecret: string,
    payload: HttpPayload,
    options: HttpDeliveryOptions = {},
  ): Promise<HttpDeliveryResult> {
    const { body, contentType } = encodeHttpPayload(payload);
    const timestampSec = options.timestampSec ?? Math.floor(this.now() / 1000);
    const response = await fetch(appUrl, {
      method: 'POST',
      headers: {
        'content-type': contentType,
        'x-slack-request-timestamp': String(timestampSec),
        'x-slack-signature': options.signature ?? signSlackRequest(signingSecret, timestampSec, body),
        ...(options.retryNum !== undefined
          ? {
              'x-slack-retry-num': String(options.retryNum),
              'x-slack-retry-reason': options.retryReason ?? 'http_timeout',
            }
          : {}),
      },
      body,
    });
    return { status: response.status, body: await response.text() };
  }

  // ---- reading, as a person would ----

  /** The thread's root and replies in order, each with its current content. */
  thread(channel: string, threadTs: string): MessageView[] {
    return this.workspace.thread(channel, threadTs).map((m) => this.view(m));
  }

  /** Top-level messages of a channel, oldest first. */
  history(channel: string): MessageView[] {
    return this.workspace.history(channel).map((m) => this.view(m));
  }

  messageAt(channel: string, ts: string): MessageView | undefined {
    const message = this.workspace.find(channel, ts);
    return message ? this.view(message) : undefined;
  }

  /** Messages only `user` saw (chat.postEphemeral and ephemeral response_url replies). */
  ephemerals(user: string, channel?: string): EphemeralMessage[] {
    return this.workspace.ephemeralMessages.filter(
      (m) => m.user === user && (channel === undefined || m.channel === channel),
    );
  }

  views(): OpenedView[] {
    return [...this.workspace.views];
  }

  file(id: string): SlackFile | undefined {
    return this.workspace.files.get(id);
  }

  /** Web API calls received (including rejected ones), optionally for one method. */
  calls(method?: string): CallRecord[] {
    return this.callLog.filter((c) => method === undefined || c.method === method);
  }

  /** The thread as plain text, blocks flattened, reactions and edits noted. */
  renderThread(channel: string, threadTs: string): string {
    return renderMessages(this.workspace.thread(channel, threadTs), { users: this.workspace.users });
  }

  renderHistory(channel: string): string {
    return this.workspace
      .history(channel)
      .map((root) => renderMessages(this.workspace.thread(channel, root.ts), { users: this.workspace.users }))
      .join('\n\n');
  }

  /**
   * Resolves once `predicate` holds; re-checked after every Web API call, response_url post, upload and
   * Socket Mode connect/disconnect.
   * Rejects after timeoutMs.
   */
  waitFor<T>(predicate: () => T | undefined | false | null, timeoutMs = 5000): Promise<T> {
    const first = predicate();
    if (first) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        let value: T | undefined | false | null;
        try {
          value = predicate();
        } catch (error) {
          cleanup();
          reject(error);
          return;
        }
        if (value) {
          cleanup();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`slack emulator: condition not met within ${timeoutMs}ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.changes.off('change', check);
      };
      this.changes.on('change', check);
    });
  }

  async stop(): Promise<void> {
    await this.socketMode.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- internals ----

  private postAsUser(args: MessageArgs): SlackMessage {
    this.workspace.ensureUser(args.user);
    if (args.threadTs && !this.workspace.find(args.channel, args.threadTs)) {
      throw new Error(`no thread ${args.threadTs} in ${args.channel}`);
    }
    return this.workspace.addMessage({
      channel: args.channel,
      user: args.user,
      text: args.text,
      ...(args.botId ? { botId: args.botId } : {}),
      ...(args.threadTs ? { threadTs: args.threadTs } : {}),
      files: storeAttachedFiles(this.workspace, args.files),
    });
  }

  private messageEvent(message: SlackMessage): Record<string, unknown> {
    return {
      type: 'message',
      channel: message.channel,
      user: message.user,
      text: message.text,
      ts: message.ts,
      event_ts: message.ts,
      team: this.identity.teamId,
      channel_type: channelType(this.workspace.ensureChannel(message.channel)),
      ...(message.botId ? { bot_id: message.botId } : { client_msg_id: randomUUID() }),
      ...(message.threadTs ? { thread_ts: message.threadTs, parent_user_id: this.rootAuthor(message) } : {}),
      ...(message.files.length > 0
        ? { subtype: 'file_share', files: message.files.map((f) => fileJson(f, this.origin)) }
        : {}),
    };
  }

  private rootAuthor(message: SlackMessage): string | undefined {
    return message.threadTs ? this.workspace.find(message.channel, message.threadTs)?.user : undefined;
  }

  private callback(event: Record<string, unknown>): HttpPayload {
    return {
      token: 'emulator-verification-token',
      team_id: this.identity.teamId,
      api_app_id: this.identity.appId,
      event,
      type: 'event_callback',
      event_id: `Ev${randomUUID().replace(/-/g, '').slice(0, 12).toUpperCase()}`,
      event_time: Math.floor(this.now() / 1000),
      authorizations: [
        {
          enterprise_id: null,
          team_id: this.identity.teamId,
          user_id: this.identity.botUserId,
          is_bot: true,
          is_enterprise_install: false,
        },
      ],
      is_ext_shared_channel: false,
    };
  }

  private issueTrigger(): string {
    const id = `${Math.floor(this.now() / 1000)}.${randomUUID().replace(/-/g, '').slice(0, 16)}`;
    this.triggers.add(id);
    return id;
  }

  private issueResponseUrl(target: ResponseTarget): string {
    const id = randomUUID();
    this.responseTargets.set(id, target);
    return `${this.origin}/response/${id}`;
  }

  /** A slash command ack may carry an immediate reply, which Slack shows to the person only. */
  private recordAckReply(ack: Ack, args: SlashCommandArgs): void {
    const text = typeof ack.payload.text === 'string' ? ack.payload.text : undefined;
    const blocks = Array.isArray(ack.payload.blocks) ? (ack.payload.blocks as SlackBlock[]) : undefined;
    if (text === undefined && blocks === undefined) return;
    this.workspace.ephemeralMessages.push({
      channel: args.channel,
      user: args.user,
      ts: this.workspace.nextTs(),
      text: text ?? '',
      via: 'response_url',
      ...(blocks ? { blocks } : {}),
    });
    this.changes.emit('change');
  }

  private view(message: SlackMessage): MessageView {
    const author = this.workspace.users.get(message.user);
    return {
      channel: message.channel,
      ts: message.ts,
      ...(message.threadTs ? { threadTs: message.threadTs } : {}),
      user: message.user,
      userName: author?.name ?? message.user,
      isBot: message.botId !== undefined,
      text: message.text,
      ...(message.blocks ? { blocks: message.blocks } : {}),
      readable: message.blocks && message.blocks.length > 0 ? blocksToText(message.blocks) : message.text,
      reactions: [...message.reactions].map(([name, users]) => ({ name, users: [...users] })),
      edits: [...message.edits],
      files: message.files.map((f) => ({
        id: f.id,
        name: f.filename,
        size: f.content?.length ?? 0,
        ...(f.title ? { title: f.title } : {}),
      })),
    };
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator.local');
    const raw = await readRaw(req);
    if (req.method === 'POST' && url.pathname.startsWith('/api/')) {
      await this.handleApi(url.pathname.slice('/api/'.length), req, raw, res);
    } else if (req.method === 'POST' && url.pathname.startsWith('/upload/')) {
      await this.handleUpload(url.pathname.slice('/upload/'.length), req, raw, res);
    } else if (req.method === 'GET' && url.pathname.startsWith('/files-pri/')) {
      serveFile(
        this.workspace,
        this.identity,
        url.pathname.slice('/files-pri/'.length),
        req.headers.authorization,
        res,
      );
      this.callLog.push({
        method: 'files-pri',
        params: { path: url.pathname },
        status: 'ok',
        at: this.now(),
      });
    } else if (req.method === 'POST' && url.pathname.startsWith('/response/')) {
      await this.handleResponseUrl(url.pathname.slice('/response/'.length), req, raw, res);
    } else {
      sendJson(res, 404, { ok: false, error: 'not_found' });
    }
    this.changes.emit('change');
  }

  private async handleApi(
    method: string,
    req: IncomingMessage,
    raw: Buffer,
    res: ServerResponse,
  ): Promise<void> {
    let fields: Fields;
    try {
      fields = await parseBody(raw, req.headers['content-type']);
    } catch {
      this.record(method, new Map(), 'error', 'invalid_form_data');
      sendJson(res, 200, { ok: false, error: 'invalid_form_data' });
      return;
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const token = bearer ?? stringField(fields, 'token');
    const authError = this.checkToken(method, token);
    if (authError) {
      this.record(method, fields, 'auth_error', authError);
      sendJson(res, 200, { ok: false, error: authError });
      return;
    }
    const retryAfter = this.limits.check(method, stringField(fields, 'channel'));
    if (retryAfter !== undefined) {
      this.record(method, fields, 'rate_limited', 'ratelimited');
      sendJson(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(retryAfter) });
      return;
    }
    const handler = this.api[method];
    const result = handler ? handler(fields) : { ok: false, error: 'unknown_method' };
    this.record(
      method,
      fields,
      result.ok ? 'ok' : 'error',
      typeof result.error === 'string' ? result.error : undefined,
    );
    sendJson(res, 200, result);
  }

  private checkToken(method: string, token: string | undefined): string | undefined {
    if (!token) return 'not_authed';
    const expected = tokenKind(method) === 'app' ? this.identity.appToken : this.identity.botToken;
    if (token === expected) return undefined;
    if (tokenKind(method) === 'app' && token === this.identity.botToken) return 'not_allowed_token_type';
    return 'invalid_auth';
  }

  private record(method: string, fields: Fields, status: CallRecord['status'], error?: string): void {
    this.callLog.push({
      method,
      params: paramsOf(fields),
      status,
      at: this.now(),
      ...(error ? { error } : {}),
    });
  }

  private async handleUpload(
    id: string,
    req: IncomingMessage,
    raw: Buffer,
    res: ServerResponse,
  ): Promise<void> {
    const file = this.workspace.files.get(id);
    if (!file) {
      res.writeHead(404).end('file not found');
      return;
    }
    const type = req.headers['content-type'] ?? '';
    let content = raw;
    if (type.startsWith('multipart/form-data')) {
      const fields = await parseBody(raw, type);
      const part = fields.get('body') ?? fields.get('file') ?? [...fields.values()][0];
      content = part === undefined ? Buffer.alloc(0) : typeof part === 'string' ? Buffer.from(part) : part;
    }
    file.content = content;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${content.length}`);
  }

  private async handleResponseUrl(
    id: string,
    req: IncomingMessage,
    raw: Buffer,
    res: ServerResponse,
  ): Promise<void> {
    const target = this.responseTargets.get(id);
    if (!target) {
      sendJson(res, 404, { ok: false, error: 'expired_url' });
      return;
    }
    let fields: Fields;
    try {
      fields = await parseBody(raw, req.headers['content-type']);
    } catch {
      sendJson(res, 400, { ok: false, error: 'invalid_payload' });
      return;
    }
    const text = stringField(fields, 'text') ?? '';
    const blocksValue = jsonField(fields, 'blocks');
    const blocks = Array.isArray(blocksValue) ? (blocksValue as SlackBlock[]) : undefined;
    const threadTs = stringField(fields, 'thread_ts') ?? target.threadTs;
    const flag = (key: string) => ['true', '1'].includes(stringField(fields, key) ?? '');
    this.callLog.push({ method: 'response_url', params: paramsOf(fields), status: 'ok', at: this.now() });
    if (flag('delete_original') && target.messageTs) {
      const original = this.workspace.find(target.channel, target.messageTs);
      if (original) original.deleted = true;
    } else if (flag('replace_original') && target.messageTs) {
      const original = this.workspace.find(target.channel, target.messageTs);
      if (original) {
        original.edits.push({ text: original.text, ...(original.blocks ? { blocks: original.blocks } : {}) });
        original.text = text;
        if (blocks) original.blocks = blocks;
        else delete original.blocks;
      }
    } else if (stringField(fields, 'response_type') === 'in_channel') {
      this.workspace.addMessage({
        channel: target.channel,
        user: this.identity.botUserId,
        botId: this.identity.botId,
        text,
        ...(blocks ? { blocks } : {}),
        ...(threadTs ? { threadTs } : {}),
      });
    } else {
      this.workspace.ephemeralMessages.push({
        channel: target.channel,
        user: target.user,
        ts: this.workspace.nextTs(),
        text,
        via: 'response_url',
        ...(blocks ? { blocks } : {}),
        ...(threadTs ? { threadTs } : {}),
      });
    }
    sendJson(res, 200, { ok: true });
  }
}

/** Starts a Slack emulator on 127.0.0.1 with an OS-chosen port. */
export async function startSlackEmulator(options: SlackEmulatorOptions = {}): Promise<SlackEmulator> {
  const server = createServer();
  const emulator = new SlackEmulator(server, options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  emulator.setOrigin(`http://127.0.0.1:${port}`);
  return emulator;
}
