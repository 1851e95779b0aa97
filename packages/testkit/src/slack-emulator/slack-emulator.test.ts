import { LogLevel, WebClient } from '@slack/web-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ManualClock } from '../manual-clock.js';
import { signSlackRequest } from './signing.js';
import { type SlackEmulator, startSlackEmulator } from './slack-emulator.js';

let emulator: SlackEmulator;

beforeEach(async () => {
  emulator = await startSlackEmulator({ ackTimeoutMs: 300 });
});
afterEach(async () => {
  await emulator.stop();
});

const client = (token = emulator.botToken) =>
  new WebClient(token, {
    slackApiUrl: emulator.apiUrl,
    retryConfig: { retries: 0 },
    logLevel: LogLevel.ERROR,
  });

describe('Slack emulator Web API', () => {
  it('answers auth.test for the bot token and invalid_auth otherwise', async () => {
    const auth = await client().auth.test();
    expect(auth.user_id).toBe(emulator.botUserId);
    await expect(client('xoxb-wrong').auth.test()).rejects.toMatchObject({ data: { error: 'invalid_auth' } });
    await expect(client().apps.connections.open({})).rejects.toMatchObject({
      data: { error: 'not_allowed_token_type' },
    });
    expect(emulator.calls('auth.test').map((c) => c.status)).toEqual(['ok', 'auth_error']);
  });

  it('stores posts, thread replies, edits and reactions as a person would read them', async () => {
    const web = client();
    const root = await web.chat.postMessage({ channel: 'C1', text: 'root' });
    const rootTs = root.ts ?? '';
    const reply = await web.chat.postMessage({
      channel: 'C1',
      thread_ts: rootTs,
      text: 'fallback',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: '*Task started*' } },
        {
          type: 'actions',
          elements: [
            { type: 'button', action_id: 'task_cancel', text: { type: 'plain_text', text: 'Cancel' } },
          ],
        },
      ],
    });
    await web.chat.update({ channel: 'C1', ts: reply.ts ?? '', text: 'done', blocks: [] });
    await web.reactions.add({ channel: 'C1', timestamp: rootTs, name: 'eyes' });
    await expect(web.reactions.add({ channel: 'C1', timestamp: rootTs, name: 'eyes' })).rejects.toMatchObject(
      {
        data: { error: 'already_reacted' },
      },
    );
    await expect(
      web.reactions.remove({ channel: 'C1', timestamp: rootTs, name: 'tada' }),
    ).rejects.toMatchObject({
      data: { error: 'no_reaction' },
    });

    const thread = emulator.thread('C1', rootTs);
    expect(thread.map((m) => m.readable)).toEqual(['root', 'done']);
    expect(thread[1]?.edits[0]?.text).toBe('fallback');
    expect(thread[0]?.reactions).toEqual([{ name: 'eyes', users: [emulator.botUserId] }]);
    expect(emulator.history('C1')).toHaveLength(1);
    expect(emulator.renderThread('C1', rootTs)).toBe(
      '[bematic] root\n    :eyes:\n  ↳ [bematic] (edited 1x) done',
    );
  });

  it('flattens blocks to readable text', async () => {
    const posted = await client().chat.postMessage({
      channel: 'C1',
      text: 'x',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: 'Done' } },
        {
          type: 'context',
          elements: [
            { type: 'mrkdwn', text: '1.2k tokens' },
            { type: 'mrkdwn', text: '$0.01' },
          ],
        },
        {
          type: 'actions',
          elements: [
            { type: 'button', action_id: 'task_retry', text: { type: 'plain_text', text: 'Retry' } },
          ],
        },
      ],
    });
    expect(emulator.messageAt('C1', posted.ts ?? '')?.readable).toBe(
      '== Done ==\n1.2k tokens · $0.01\n[ Retry ]',
    );
  });

  it('keeps ephemerals per user and answers users.info / conversations.info', async () => {
    emulator.addUser({ id: 'U1', name: 'alice', isAdmin: true });
    emulator.addChannel({ id: 'C9', name: 'backend' });
    const web = client();
    await web.chat.postEphemeral({ channel: 'C9', user: 'U1', text: 'only you' });
    expect(emulator.ephemerals('U1').map((m) => m.text)).toEqual(['only you']);
    expect(emulator.ephemerals('U2')).toEqual([]);
    const info = await web.users.info({ user: 'U1' });
    expect(info.user?.name).toBe('alice');
    expect(info.user?.is_admin).toBe(true);
    await expect(web.users.info({ user: 'U404' })).rejects.toMatchObject({
      data: { error: 'user_not_found' },
    });
    expect((await web.conversations.info({ channel: 'C9' })).channel?.name).toBe('backend');
  });

  it('runs the files.uploadV2 steps and shares the file in the thread', async () => {
    const web = client();
    const root = await web.chat.postMessage({ channel: 'C1', text: 'root' });
    await web.files.uploadV2({
      channel_id: 'C1',
      thread_ts: root.ts ?? '',
      filename: 'diff.patch',
      title: 'Changes',
      content: 'diff --git a/x b/x',
      initial_comment: 'the diff',
    });
    const [, shared] = emulator.thread('C1', root.ts ?? '');
    expect(shared?.text).toBe('the diff');
    expect(shared?.files).toMatchObject([{ name: 'diff.patch', title: 'Changes', size: 18 }]);
    expect(emulator.file(shared?.files[0]?.id ?? '')?.content?.toString()).toBe('diff --git a/x b/x');
  });

  it("enforces Slack's per-channel and per-minute limits when asked, on the injected clock", async () => {
    const clock = new ManualClock();
    const limited = await startSlackEmulator({ now: () => clock.now() });
    try {
      limited.enforceRateLimit('chat.postMessage', { perChannelPerSecond: 1, perMinute: 3 });
      const web = new WebClient(limited.botToken, {
        slackApiUrl: limited.apiUrl,
        rejectRateLimitedCalls: true,
        logLevel: LogLevel.ERROR,
      });
      const post = (channel: string) =>
        web.chat.postMessage({ channel, text: 'hi' }).then(
          () => 'ok',
          () => 'rate_limited',
        );
      expect(await post('C1')).toBe('ok');
      expect(await post('C1')).toBe('rate_limited');
      expect(await post('C2')).toBe('ok');
      await clock.advance(1000);
      expect(await post('C1')).toBe('ok');
      // Three accepted in this minute: the workspace bound holds for every channel.
      expect(await post('C3')).toBe('rate_limited');
      await clock.advance(60_000);
      expect(await post('C3')).toBe('ok');
      expect(limited.calls('chat.postMessage').filter((c) => c.status === 'rate_limited')).toHaveLength(2);
    } finally {
      await limited.stop();
    }
  });

  it('answers 429 with Retry-After for the next N calls of a method', async () => {
    emulator.rateLimit('chat.postMessage', { count: 2, retryAfterSec: 0 });
    const web = new WebClient(emulator.botToken, {
      slackApiUrl: emulator.apiUrl,
      retryConfig: { retries: 3, minTimeout: 1, maxTimeout: 5 },
      logLevel: LogLevel.ERROR,
    });
    await web.chat.postMessage({ channel: 'C1', text: 'eventually' });
    expect(emulator.calls('chat.postMessage').map((c) => c.status)).toEqual([
      'rate_limited',
      'rate_limited',
      'ok',
    ]);
    const rejecting = new WebClient(emulator.botToken, {
      slackApiUrl: emulator.apiUrl,
      rejectRateLimitedCalls: true,
    });
    emulator.rateLimit('chat.postMessage', { count: 1, retryAfterSec: 7 });
    await expect(rejecting.chat.postMessage({ channel: 'C1', text: 'x' })).rejects.toMatchObject({
      retryAfter: 7,
    });
  });

  it('accepts JSON bodies as well as forms', async () => {
    const response = await fetch(`${emulator.apiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${emulator.botToken}` },
      body: JSON.stringify({ channel: 'C2', text: 'json', blocks: [{ type: 'divider' }] }),
    });
    const body = (await response.json()) as { ok: boolean; ts: string };
    expect(body.ok).toBe(true);
    expect(emulator.messageAt('C2', body.ts)?.blocks).toEqual([{ type: 'divider' }]);
  });
});

describe('Slack emulator Socket Mode', () => {
  async function connect(): Promise<{ ws: WebSocket; frames: unknown[] }> {
    const opened = await new WebClient(emulator.appToken, {
      slackApiUrl: emulator.apiUrl,
    }).apps.connections.open({});
    const ws = new WebSocket(opened.url ?? '');
    const frames: unknown[] = [];
    await new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; envelope_id?: string };
        frames.push(frame);
        if (frame.type === 'hello') resolve();
        if (frame.envelope_id)
          ws.send(JSON.stringify({ envelope_id: frame.envelope_id, payload: { seen: frame.type } }));
      });
    });
    return { ws, frames };
  }

  it('says hello, delivers envelopes and resolves with the ack payload', async () => {
    const { ws, frames } = await connect();
    const delivered = await emulator.mention({ user: 'U1', channel: 'C1', text: 'code fix it' });
    expect(delivered.ack.payload).toEqual({ seen: 'events_api' });
    const events = frames.slice(1) as Array<{ payload: { event: { type: string; text: string } } }>;
    expect(events.map((e) => e.payload.event.type)).toEqual(['message', 'app_mention']);
    expect(events[1]?.payload.event.text).toBe(`<@${emulator.botUserId}> code fix it`);
    const slash = await emulator.slashCommand({ user: 'U1', channel: 'C1', text: 'help' });
    expect(slash.ack.payload).toEqual({ seen: 'slash_commands' });
    ws.close();
  });

  it('rejects a connection without a valid ticket and a delivery nobody acks', async () => {
    const url = `${emulator.url.replace('http', 'ws')}/socket-mode?ticket=forged`;
    const refused = new WebSocket(url);
    await new Promise<void>((resolve) => refused.on('error', () => resolve()));

    const opened = await new WebClient(emulator.appToken, {
      slackApiUrl: emulator.apiUrl,
    }).apps.connections.open({});
    const silent = new WebSocket(opened.url ?? '');
    await new Promise<void>((resolve) => silent.on('message', () => resolve()));
    await expect(emulator.message({ user: 'U1', channel: 'C1', text: 'hi' })).rejects.toMatchObject({
      code: 'SLACK_EMULATOR_ACK_TIMEOUT',
    });
    expect(emulator.unacked).toHaveLength(1);
    silent.close();
  });

  it('signs HTTP deliveries like Slack', async () => {
    const received: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
    const { createServer } = await import('node:http');
    const app = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const { port } = app.address() as { port: number };
    const payload = emulator.prepareSlashCommand({ user: 'U1', channel: 'C1', text: 'status' });
    const result = await emulator.deliverHttp(`http://127.0.0.1:${port}/slack/events`, 'shh', payload, {
      timestampSec: 1_700_000_000,
    });
    expect(result.status).toBe(200);
    const [request] = received;
    expect(request?.headers['x-slack-request-timestamp']).toBe('1700000000');
    expect(request?.headers['x-slack-signature']).toBe(
      signSlackRequest('shh', 1_700_000_000, request?.body ?? ''),
    );
    expect(new URLSearchParams(request?.body).get('command')).toBe('/bm');
    await new Promise<void>((resolve) => app.close(() => resolve()));
  });
});
