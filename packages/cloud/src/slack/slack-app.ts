import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { redactDeep } from '@bematic/protocol';
import {
  type AnyMiddlewareArgs,
  App,
  HTTPReceiver,
  type Middleware,
  SocketModeReceiver,
  webApi,
} from '@slack/bolt';
import { type Logger, pino } from 'pino';
import { APPROVAL_ACTIONS } from '../approvals/approval-blocks.js';
import type { ChatMessage } from '../chat/chat-surface.js';
import type { InboundHandler, InboundRequest } from '../chat/inbound.js';
import type { SlackDeliveryRepository } from '../db/repositories/types.js';
import { boltLogger } from './bolt-logger.js';
import { SlackChatSurface } from './slack-chat-surface.js';
import { deduplicateDeliveries, rejectSkewedRequests } from './slack-deliveries.js';
import {
  actionRequest,
  appMentionEventSchema,
  blockActionSchema,
  type InboundContext,
  mentionRequest,
  messageEventSchema,
  messageRequest,
  slashCommandSchema,
  slashRequest,
} from './slack-inbound.js';
import { CachedSlackNames, decodeSlackText } from './slack-text.js';
import { gatherSlackExtras } from './thread-context.js';

export const TASK_ACTION_IDS = [
  'task_retry',
  'task_cancel',
  'workspace_pr',
  'workspace_diff',
  'workspace_discard',
  'plan_run',
  'plan_edit',
  'plan_cancel',
  'task_plan_first',
  ...APPROVAL_ACTIONS,
] as const;

export interface SlackAppOptions {
  botToken: string;
  /** Socket Mode when set; HTTP events otherwise. */
  appToken?: string;
  /** Required in HTTP mode: requests are verified against it. */
  signingSecret?: string;
  /** SLACK_API_URL; both the Web API client and Socket Mode's connection opener follow it. */
  apiUrl?: string;
  handler: InboundHandler;
  logger?: Logger;
  /** The slash command to answer (default /bm). */
  command?: string;
  /** HTTP mode: also listen on this port (0 = any) instead of only exposing `requestListener` to mount. */
  port?: number;
  host?: string;
  /** HTTP mode: the path Slack posts to (default /slack/events). */
  endpoint?: string;
  /** Retries for Web API calls; a 429 waits Retry-After before each retry. */
  retryConfig?: webApi.RetryOptions;
  /** Socket Mode: how long to wait for a pong before reconnecting (ms). */
  clientPingTimeoutMs?: number;
  now?: () => number;
  /** Where deliveries are recorded so a retry or replay is handled once (also across restarts). */
  deliveries?: SlackDeliveryRepository;
  /** Processing time of every Slack payload (ms), keyed by event type, for metrics. */
  observe?: (eventType: string, ms: number) => void;
}

export interface SlackApp {
  readonly mode: 'socket' | 'http';
  readonly app: App;
  readonly surface: SlackChatSurface;
  /** HTTP mode: mount on an existing server (it answers the endpoint path, 404 otherwise). */
  readonly requestListener: RequestListener | undefined;
  /** HTTP mode with a port, once started: the URL Slack should post events to. */
  readonly eventsUrl: string | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Enough retries to outlast a long 429 storm; each rate-limited attempt also waits Retry-After. */
const DEFAULT_RETRY: webApi.RetryOptions = {
  retries: 12,
  factor: 1.6,
  minTimeout: 250,
  maxTimeout: 15_000,
  randomize: true,
};

/**
 * The client for task message updates. They are scheduled under the workspace budget, which is also their one
 * retry: it waits out a 429's Retry-After and tries a failed final update again (6 attempts), so this client
 * makes exactly one request per call and hands a 429 back at once.
 */
export function slackUpdateClient(
  botToken: string,
  options: Pick<webApi.WebClientOptions, 'slackApiUrl' | 'logger'> = {},
): webApi.WebClient {
  return new webApi.WebClient(botToken, {
    ...options,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
  });
}

function describe(body: unknown): { type: string; detail?: string } {
  if (typeof body !== 'object' || body === null) return { type: 'unknown' };
  const b = body as { type?: unknown; command?: unknown; event?: { type?: unknown } };
  if (typeof b.command === 'string') return { type: 'slash_command', detail: b.command };
  if (b.type === 'event_callback' && typeof b.event?.type === 'string')
    return { type: 'event', detail: b.event.type };
  return { type: typeof b.type === 'string' ? b.type : 'unknown' };
}

function loggingMiddleware(
  logger: Logger,
  observe: SlackAppOptions['observe'],
): Middleware<AnyMiddlewareArgs> {
  return async ({ body, next }) => {
    const started = performance.now();
    const what = describe(body);
    try {
      await next();
    } finally {
      const durationMs = performance.now() - started;
      logger.debug({ ...what, durationMs: Math.round(durationMs * 10) / 10 }, 'slack: event handled');
      try {
        observe?.(what.type === 'event' && what.detail ? what.detail : what.type, durationMs);
      } catch (err) {
        logger.warn({ err }, 'slack: event observer failed');
      }
    }
  };
}

/** A Bolt app that turns Slack mentions, thread replies, /bm and task buttons into InboundRequests. */
export async function createSlackApp(options: SlackAppOptions): Promise<SlackApp> {
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'slack' });
  const now = options.now ?? Date.now;
  const boltLog = boltLogger(logger);
  const slackApiUrl = options.apiUrl ? { slackApiUrl: options.apiUrl } : {};
  const mode = options.appToken ? 'socket' : 'http';
  const endpoint = options.endpoint ?? '/slack/events';

  let receiver: SocketModeReceiver | HTTPReceiver;
  if (options.appToken) {
    receiver = new SocketModeReceiver({
      appToken: options.appToken,
      logger: boltLog,
      ...(options.clientPingTimeoutMs ? { clientPingTimeout: options.clientPingTimeoutMs } : {}),
      // Socket Mode opens its connection through its own WebClient; only this path gives it SLACK_API_URL.
      installerOptions: { clientOptions: { ...slackApiUrl } },
    });
  } else {
    if (!options.signingSecret) {
      throw new Error('Slack HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode)');
    }
    receiver = new HTTPReceiver({
      signingSecret: options.signingSecret,
      endpoints: endpoint,
      logger: boltLog,
      processBeforeResponse: false,
    });
  }

  const app = new App({
    token: options.botToken,
    receiver,
    logger: boltLog,
    deferInitialization: true,
    clientOptions: {
      ...slackApiUrl,
      retryConfig: options.retryConfig ?? DEFAULT_RETRY,
      rejectRateLimitedCalls: false,
    },
  });
  const updateClient = slackUpdateClient(options.botToken, { ...slackApiUrl, logger: boltLog });
  const surface = new SlackChatSurface(app.client, logger, updateClient);
  const names = new CachedSlackNames({
    user: async (id) => {
      const { user } = await app.client.users.info({ user: id });
      return user?.profile?.display_name || user?.real_name || user?.name || undefined;
    },
    channel: async (id) => (await app.client.conversations.info({ channel: id })).channel?.name,
  });
  /** The one place Slack's wire format becomes what the person wrote. */
  const decoded = async (request: InboundRequest): Promise<InboundRequest> => ({
    ...request,
    text: await decodeSlackText(request.text, names),
  });

  const deliver = async (request: InboundRequest): Promise<void> => {
    try {
      await options.handler.handle(request);
    } catch (error) {
      // The handler promises never to reject; if it does, the person still gets an answer.
      logger.error({ err: error, kind: request.kind }, 'slack: inbound handler rejected');
      await request
        .respond({ text: 'Something went wrong handling that. It has been logged.' })
        .catch(() => undefined);
    }
  };
  const context = (botUserId: string | undefined, appName?: string): InboundContext => ({
    surface,
    botUserId,
    now,
    ...(appName ? { appName } : {}),
    extras: (message, opts) =>
      gatherSlackExtras({ client: app.client, botToken: options.botToken, names }, message, opts),
  });
  /** The bot user's name as Slack shows it (auth.test's user, then its profile), for `/bm help`. */
  const appNameOf = async (botUserId: string | undefined): Promise<string | undefined> => {
    const id = botUserId ?? (await app.client.auth.test().catch(() => undefined))?.user_id;
    return id ? names.userName(id) : undefined;
  };
  const badPayload = (kind: string, issues: unknown) =>
    logger.warn({ code: 'SLACK_BAD_PAYLOAD', kind, issues }, 'slack: ignored a payload we could not read');

  app.use(loggingMiddleware(logger, options.observe));
  if (options.deliveries) app.use(deduplicateDeliveries(options.deliveries, logger, now));

  app.event('app_mention', async ({ event, context: ctx }) => {
    const parsed = appMentionEventSchema.safeParse(event);
    if (!parsed.success) return badPayload('app_mention', parsed.error.issues);
    if (parsed.data.bot_id) return;
    await deliver(await decoded(mentionRequest(parsed.data, context(ctx.botUserId))));
  });

  app.event('message', async ({ event, context: ctx }) => {
    const parsed = messageEventSchema.safeParse(event);
    if (!parsed.success) return badPayload('message', parsed.error.issues);
    const request = messageRequest(parsed.data, context(ctx.botUserId));
    if (request) await deliver(await decoded(request));
  });

  app.command(options.command ?? '/bm', async ({ ack, command, respond, context: ctx }) => {
    await ack();
    const parsed = slashCommandSchema.safeParse(command);
    if (!parsed.success) return badPayload('slash_command', parsed.error.issues);
    const { channel_id: channel, user_id: user } = parsed.data;
    const reply = async (shown: ChatMessage) => {
      const message = redactDeep(shown);
      try {
        await respond({
          response_type: 'ephemeral',
          text: message.text,
          ...(message.blocks ? { blocks: message.blocks } : {}),
        });
      } catch (error) {
        logger.warn({ err: error }, 'slack: response_url failed, answering with chat.postEphemeral');
        await surface.postEphemeral(channel, user, message);
      }
    };
    const appName = await appNameOf(ctx.botUserId);
    await deliver(slashRequest(parsed.data, context(ctx.botUserId, appName), reply));
  });

  for (const actionId of TASK_ACTION_IDS) {
    app.action(actionId, async ({ ack, body, respond, context: ctx }) => {
      await ack();
      const parsed = blockActionSchema.safeParse(body);
      if (!parsed.success) return badPayload('block_actions', parsed.error.issues);
      const channel = parsed.data.channel?.id ?? parsed.data.container?.channel_id ?? '';
      const user = parsed.data.user.id;
      const reply = async (shown: ChatMessage) => {
        const message = redactDeep(shown);
        try {
          await respond({
            response_type: 'ephemeral',
            replace_original: false,
            text: message.text,
            ...(message.blocks ? { blocks: message.blocks } : {}),
          });
        } catch (error) {
          logger.warn({ err: error }, 'slack: response_url failed, answering with chat.postEphemeral');
          await surface.postEphemeral(channel, user, message);
        }
      };
      const request = actionRequest(parsed.data, actionId, context(ctx.botUserId), reply);
      if (!request) return badPayload('block_actions', 'no channel or action');
      await deliver(request);
    });
  }

  app.error(async (error) => {
    logger.error({ err: error }, 'slack: listener failed');
  });

  const requestListener =
    receiver instanceof HTTPReceiver
      ? rejectSkewedRequests(receiver.requestListener, logger, now)
      : undefined;
  let server: Server | undefined;
  let eventsUrl: string | undefined;
  let started = false;

  return {
    mode,
    app,
    surface,
    requestListener,
    get eventsUrl() {
      return eventsUrl;
    },
    async start() {
      if (started) return;
      await app.init();
      if (receiver instanceof SocketModeReceiver) {
        await app.start();
      } else if (options.port !== undefined && requestListener) {
        const listening = createServer(requestListener);
        await new Promise<void>((resolve, reject) => {
          listening.once('error', reject);
          listening.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
        });
        server = listening;
        const { port } = listening.address() as AddressInfo;
        eventsUrl = `http://${options.host ?? '127.0.0.1'}:${port}${endpoint}`;
      }
      started = true;
      logger.info({ mode }, 'slack: connected');
    },
    async stop() {
      if (!started) return;
      started = false;
      if (receiver instanceof SocketModeReceiver) {
        await receiver.client.disconnect();
      }
      if (server) {
        const closing = server;
        server = undefined;
        closing.closeAllConnections();
        await new Promise<void>((resolve) => closing.close(() => resolve()));
      }
    },
  };
}
