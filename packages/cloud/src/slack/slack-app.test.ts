import { type SlackEmulator, startSlackEmulator } from '@bematic/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestDb } from '../../test/support/database.js';
import type { InboundHandler, InboundRequest } from '../chat/inbound.js';
import { retryAfterMs } from '../notifications/retry-after.js';
import { createSlackApp, type SlackApp, type SlackAppOptions } from './slack-app.js';
import { DELIVERY_RETENTION_MS } from './slack-deliveries.js';

/** Our InboundHandler interface is the boundary under test, so a recorder stands in for the middleware chain. */
class RecordingHandler implements InboundHandler {
  readonly requests: InboundRequest[] = [];
  onRequest: (request: InboundRequest) => Promise<void> = async () => {};
  private readonly waiters: Array<{ count: number; wake: () => void }> = [];

  async handle(request: InboundRequest): Promise<void> {
    this.requests.push(request);
    for (const waiter of [...this.waiters]) {
      if (this.requests.length >= waiter.count) waiter.wake();
    }
    await this.onRequest(request);
  }

  /** The n-th request (0-based), once it has arrived. */
  async nth(n: number): Promise<InboundRequest> {
    if (this.requests.length <= n) {
      await new Promise<void>((resolve) => this.waiters.push({ count: n + 1, wake: resolve }));
    }
    return this.requests[n] as InboundRequest;
  }
}

const FAST_RETRY = { retries: 10, minTimeout: 1, maxTimeout: 20 };

let emulator: SlackEmulator;
let handler: RecordingHandler;
const apps: SlackApp[] = [];

async function startApp(overrides: Partial<SlackAppOptions> = {}): Promise<SlackApp> {
  const app = await createSlackApp({
    botToken: emulator.botToken,
    appToken: emulator.appToken,
    apiUrl: emulator.apiUrl,
    handler,
    retryConfig: FAST_RETRY,
    ...overrides,
  });
  apps.push(app);
  await app.start();
  return app;
}

beforeEach(async () => {
  emulator = await startSlackEmulator({ users: [{ id: 'U1', name: 'alice' }] });
  handler = new RecordingHandler();
});

afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  await emulator.stop();
});

describe('Slack app in Socket Mode against the emulator', () => {
  it('turns a mention into an InboundRequest and posts back into the thread', async () => {
    await startApp();
    // Socket Mode followed SLACK_API_URL to open its connection.
    expect(emulator.calls('apps.connections.open')).toHaveLength(1);
    expect(emulator.socketConnections).toBe(1);

    const mention = await emulator.mention({
      user: 'U1',
      channel: 'C1',
      text: 'code fix the login bug in auth.ts',
    });
    const request = await handler.nth(0);
    expect(request).toMatchObject({
      kind: 'mention',
      userId: 'U1',
      channelId: 'C1',
      text: 'code fix the login bug in auth.ts',
      threadTs: mention.ts,
      messageTs: mention.ts,
    });
    expect(request.surface.name).toBe('slack');

    const posted = await request.surface.post(request.channelId, { text: 'Task started' }, request.threadTs);
    await request.surface.addReaction(request.channelId, mention.ts, 'eyes');
    await request.surface.addReaction(request.channelId, mention.ts, 'eyes');
    await request.surface.removeReaction(request.channelId, mention.ts, 'white_check_mark');
    await request.surface.update(request.channelId, posted.ts, { text: 'Task completed' });

    const thread = emulator.thread('C1', mention.ts);
    expect(thread.map((m) => [m.userName, m.readable])).toEqual([
      ['alice', `<@${emulator.botUserId}> code fix the login bug in auth.ts`],
      ['bematic', 'Task completed'],
    ]);
    expect(thread[0]?.reactions).toEqual([{ name: 'eyes', users: [emulator.botUserId] }]);
    expect(thread[1]?.edits.map((e) => e.text)).toEqual(['Task started']);
  });

  it('delivers thread replies and ignores bots, its own posts and replies that mention it', async () => {
    await startApp();
    const root = await emulator.mention({ user: 'U1', channel: 'C1', text: 'code add tests' });
    await handler.nth(0);
    await emulator.message({
      user: 'UOTHERBOT',
      botId: 'B0OTHER',
      channel: 'C1',
      threadTs: root.ts,
      text: 'beep',
    });
    await emulator.message({
      user: emulator.botUserId,
      botId: emulator.identity.botId,
      channel: 'C1',
      threadTs: root.ts,
      text: 'my own progress',
    });
    const again = await emulator.mention({
      user: 'U1',
      channel: 'C1',
      threadTs: root.ts,
      text: 'status please',
    });
    await emulator.message({ user: 'U1', channel: 'C1', threadTs: root.ts, text: 'also cover logout' });
    await handler.nth(2);

    const kinds = handler.requests.map((r) => [r.kind, r.text]);
    expect(kinds).toContainEqual(['mention', 'status please']);
    expect(kinds).toContainEqual(['thread_reply', 'also cover logout']);
    expect(handler.requests).toHaveLength(3);
    const reply = handler.requests.find((r) => r.kind === 'thread_reply');
    expect(reply).toMatchObject({ userId: 'U1', channelId: 'C1', threadTs: root.ts });
    expect(reply?.messageTs).not.toBe(root.ts);
    const threadedMention = handler.requests.find((r) => r.text === 'status please');
    expect(threadedMention).toMatchObject({ threadTs: root.ts, messageTs: again.ts });
  });

  it('acks /bm at once and shows the response to that person only', async () => {
    handler.onRequest = async (request) => request.respond({ text: `usage: /bm ${request.text}` });
    await startApp();
    const delivered = await emulator.slashCommand({ user: 'U1', channel: 'C1', text: 'help' });
    expect(delivered.ack.payload).toEqual({});
    const request = await handler.nth(0);
    expect(request).toMatchObject({
      kind: 'slash',
      userId: 'U1',
      userName: 'alice',
      channelId: 'C1',
      text: 'help',
    });
    expect(request.threadTs).toBeNull();
    const [ephemeral] = await emulator.waitFor(() => {
      const found = emulator.ephemerals('U1');
      return found.length > 0 ? found : undefined;
    });
    expect(ephemeral).toMatchObject({ channel: 'C1', text: 'usage: /bm help', via: 'response_url' });
    expect(emulator.history('C1')).toEqual([]);
  });

  it('acks task buttons and delivers the action with its value', async () => {
    await startApp();
    const root = await emulator.mention({ user: 'U1', channel: 'C1', text: 'code go' });
    const mention = await handler.nth(0);
    const posted = await mention.surface.post(
      'C1',
      {
        text: 'Task failed',
        blocks: [
          {
            type: 'actions',
            elements: [
              {
                type: 'button',
                action_id: 'task_retry',
                value: 'task_123',
                text: { type: 'plain_text', text: 'Retry' },
              },
            ],
          },
        ],
      },
      root.ts,
    );
    await emulator.clickButton({
      user: 'U1',
      channel: 'C1',
      messageTs: posted.ts,
      actionId: 'task_retry',
      value: 'task_123',
    });
    const action = await handler.nth(1);
    expect(action).toMatchObject({
      kind: 'action',
      userId: 'U1',
      channelId: 'C1',
      text: 'task_retry',
      actionValue: 'task_123',
      messageTs: posted.ts,
      threadTs: root.ts,
    });
    await action.respond({ text: 'Retrying task_123' });
    expect(emulator.ephemerals('U1').map((m) => m.text)).toEqual(['Retrying task_123']);
  });

  it('reconnects through SLACK_API_URL when Slack asks it to', async () => {
    await startApp({ clientPingTimeoutMs: 300 });
    emulator.requestReconnect();
    await emulator.waitFor(() => emulator.socketConnectionsOpened === 2 && emulator.socketConnections === 1);
    expect(emulator.calls('apps.connections.open')).toHaveLength(2);
    await emulator.mention({ user: 'U1', channel: 'C1', text: 'code after reconnect' });
    expect((await handler.nth(0)).text).toBe('code after reconnect');
  });

  it('survives payloads it cannot read and a handler that rejects', async () => {
    await startApp();
    const broken = await emulator.deliverEnvelope(
      'events_api',
      emulator.eventCallback({ type: 'app_mention' }),
    );
    expect(broken.envelopeId).toBeTruthy();
    handler.onRequest = async () => {
      throw new Error('handler broke its promise');
    };
    await emulator.mention({ user: 'U1', channel: 'C1', text: 'code crash please' });
    await handler.nth(0);
    await emulator.waitFor(() => emulator.ephemerals('U1').length > 0);
    expect(emulator.ephemerals('U1')[0]?.text).toMatch(/went wrong/);
    handler.onRequest = async () => {};
    await emulator.mention({ user: 'U1', channel: 'C1', text: 'code still alive' });
    expect((await handler.nth(1)).text).toBe('code still alive');
    expect(handler.requests).toHaveLength(2);
  });

  it('hands a 429 on chat.update back at once with its Retry-After, for the update scheduler to wait out', async () => {
    const app = await startApp({ appToken: undefined, signingSecret: 'unused' });
    const posted = await app.surface.post('C1', { text: 'step 0' });
    emulator.rateLimit('chat.update', { count: 1, retryAfterSec: 7 });
    const limited = await app.surface.update('C1', posted.ts, { text: 'step 1' }, { scheduled: true }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(retryAfterMs(limited)).toBe(7000);
    expect(emulator.calls('chat.update').map((c) => c.status)).toEqual(['rate_limited']);
    await app.surface.update('C1', posted.ts, { text: 'step 2' }, { scheduled: true });
    expect(emulator.messageAt('C1', posted.ts)?.text).toBe('step 2');
    // Other calls, edits outside the scheduler too, still wait out Retry-After and retry inside the client.
    emulator.rateLimit('chat.update', { count: 1, retryAfterSec: 1 });
    await app.surface.update('C1', posted.ts, { text: 'approved by alice' });
    expect(emulator.messageAt('C1', posted.ts)?.text).toBe('approved by alice');
    expect(emulator.calls('chat.update').map((c) => c.status)).toEqual([
      'rate_limited',
      'ok',
      'rate_limited',
      'ok',
    ]);
    emulator.rateLimit('chat.postMessage', { count: 1, retryAfterSec: 1 });
    await app.surface.post('C1', { text: 'after a 429' });
    expect(emulator.calls('chat.postMessage').map((c) => c.status)).toEqual(['ok', 'rate_limited', 'ok']);
  });

  it('handles an event once when Slack retries it, and forgets deliveries after the retention period', async () => {
    const db = await openTestDb(Date.now());
    try {
      await startApp({ deliveries: db.repos.slackDeliveries });
      const { events } = emulator.prepareMention({ user: 'U1', channel: 'C1', text: 'code once only' });
      const mention = events[1] ?? {};
      await emulator.deliverEnvelope('events_api', mention);
      await emulator.deliverEnvelope('events_api', mention, { attempt: 1, reason: 'timeout' });
      await emulator.deliverEnvelope('events_api', mention, { attempt: 2, reason: 'timeout' });
      const { ack } = await emulator.slashCommand({ user: 'U1', channel: 'C1', text: 'status' });
      expect(ack).toBeDefined();
      await handler.nth(1);
      expect(handler.requests.map((r) => r.kind)).toEqual(['mention', 'slash']);

      db.clock.now += DELIVERY_RETENTION_MS + 1;
      expect(await db.repos.slackDeliveries.pruneBefore(db.clock.now - DELIVERY_RETENTION_MS)).toBe(2);
      expect(await db.repos.slackDeliveries.claim(`event:${String(mention.event_id)}`, 'event')).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('refuses to start with a bad bot token or a bad app token', async () => {
    await expect(startApp({ botToken: 'xoxb-not-valid' })).rejects.toMatchObject({
      data: { error: 'invalid_auth' },
    });
    await expect(startApp({ appToken: 'xapp-not-valid' })).rejects.toMatchObject({
      data: { error: 'invalid_auth' },
    });
    expect(emulator.socketConnections).toBe(0);
  });
});

describe('Slack app in HTTP mode', () => {
  it('delivers a correctly signed event and rejects a bad signature with 401', async () => {
    const app = await startApp({ appToken: undefined, signingSecret: 'signing-secret', port: 0 });
    const url = app.eventsUrl ?? '';
    const { events, message } = emulator.prepareMention({ user: 'U1', channel: 'C1', text: 'review the PR' });
    const mentionEvent = events[1] ?? {};

    const forged = await emulator.deliverHttp(url, 'not-the-secret', mentionEvent);
    expect(forged.status).toBe(401);
    const stale = await emulator.deliverHttp(url, 'signing-secret', mentionEvent, {
      timestampSec: Math.floor(Date.now() / 1000) - 60 * 60,
    });
    expect(stale.status).toBe(401);
    expect(handler.requests).toHaveLength(0);

    const accepted = await emulator.deliverHttp(url, 'signing-secret', mentionEvent);
    expect(accepted.status).toBe(200);
    expect(await handler.nth(0)).toMatchObject({
      kind: 'mention',
      text: 'review the PR',
      threadTs: message.ts,
    });

    const slash = await emulator.deliverHttp(
      url,
      'signing-secret',
      emulator.prepareSlashCommand({ user: 'U1', channel: 'C1', text: 'status' }),
    );
    expect(slash.status).toBe(200);
    expect(await handler.nth(1)).toMatchObject({ kind: 'slash', text: 'status' });
  });

  it('needs a signing secret', async () => {
    await expect(
      createSlackApp({ botToken: emulator.botToken, apiUrl: emulator.apiUrl, handler }),
    ).rejects.toThrow(/SLACK_SIGNING_SECRET/);
  });
});
