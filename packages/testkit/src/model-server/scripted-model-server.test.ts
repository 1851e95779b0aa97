import { afterEach, describe, expect, it } from 'vitest';
import { block, type ScriptedModelServer, startScriptedModelServer, turn } from './index.js';

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

function parseSse(raw: string): SseEvent[] {
  return raw
    .split('\n\n')
    .filter((chunk) => chunk.trim().length > 0)
    .map((chunk) => {
      const lines = chunk.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? '';
      const data = JSON.parse(lines.find((l) => l.startsWith('data: '))?.slice(6) ?? '{}') as Record<
        string,
        unknown
      >;
      return { event, data };
    });
}

const mainLoopBody = (extra: Record<string, unknown> = {}) => ({
  model: 'claude-sonnet-4-5',
  max_tokens: 1000,
  system: [
    { type: 'text', text: 'header' },
    { type: 'text', text: 'You are TestBot.' },
  ],
  tools: [
    { name: 'Read', input_schema: {} },
    { name: 'Write', input_schema: {} },
  ],
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

const post = (
  server: ScriptedModelServer,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-secret-value', ...headers },
    body: JSON.stringify(body),
  });

describe('scripted model server', () => {
  let server: ScriptedModelServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('streams text and tool_use turns as Messages API SSE events', async () => {
    server = await startScriptedModelServer({
      script: [
        turn.reply(
          [block.text('Let me write it.'), block.toolUse('Write', { file_path: 'a.txt', content: 'x' })],
          {
            usage: { input_tokens: 120, output_tokens: 30, cache_read_input_tokens: 7 },
          },
        ),
      ],
    });
    const res = await post(server, '/v1/messages', mainLoopBody({ stream: true }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = parseSse(await res.text());
    const names = events.map((e) => e.event).filter((n) => n !== 'ping');
    expect(names).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const text = events
      .filter((e) => e.event === 'content_block_delta' && e.data.index === 0)
      .map((e) => (e.data.delta as { text: string }).text)
      .join('');
    expect(text).toBe('Let me write it.');
    const json = events
      .filter((e) => e.event === 'content_block_delta' && e.data.index === 1)
      .map((e) => (e.data.delta as { partial_json: string }).partial_json)
      .join('');
    expect(JSON.parse(json)).toEqual({ file_path: 'a.txt', content: 'x' });
    const toolStart = events.find((e) => e.event === 'content_block_start' && e.data.index === 1);
    expect(toolStart?.data.content_block).toMatchObject({ type: 'tool_use', name: 'Write' });
    const delta = events.find((e) => e.event === 'message_delta');
    expect(delta?.data.delta).toMatchObject({ stop_reason: 'tool_use' });
    expect(delta?.data.usage).toMatchObject({
      input_tokens: 120,
      output_tokens: 30,
      cache_read_input_tokens: 7,
    });
    const start = events.find((e) => e.event === 'message_start');
    expect(start?.data.message).toMatchObject({ model: 'claude-sonnet-4-5', role: 'assistant' });
  });

  it('answers non-streaming requests with a JSON message', async () => {
    server = await startScriptedModelServer({ script: [turn.text('Hello there')] });
    const res = await post(server, '/v1/messages', mainLoopBody());
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      type: 'message',
      role: 'assistant',
      stop_reason: 'end_turn',
      content: [{ type: 'text', text: 'Hello there' }],
    });
  });

  it('consumes turns only on main-loop requests; side requests get the default reply', async () => {
    server = await startScriptedModelServer({
      script: [turn.text('first'), turn.text('second')],
      sideReply: turn.text('side'),
    });
    const textOf = async (res: Response) =>
      ((await res.json()) as { content: Array<{ text: string }> }).content.map((c) => c.text).join('');
    expect(await textOf(await post(server, '/v1/messages', mainLoopBody()))).toBe('first');
    expect(await textOf(await post(server, '/v1/messages', mainLoopBody({ tools: [] })))).toBe('side');
    expect(await textOf(await post(server, '/v1/messages', mainLoopBody()))).toBe('second');
    expect(server.remainingTurns()).toBe(0);
    expect(await textOf(await post(server, '/v1/messages', mainLoopBody()))).toBe('Done.');
    expect(server.mainLoopRequests().map((r) => r.turnIndex)).toEqual([0, 1, undefined]);

    server.setScript([turn.text('again')]);
    expect(await textOf(await post(server, '/v1/messages', mainLoopBody()))).toBe('again');
  });

  it('replays HTTP errors in the API error shape with retry-after', async () => {
    server = await startScriptedModelServer({
      script: [turn.error(429, { retryAfterSec: 3 }), turn.error(529), turn.error(500), turn.error(401)],
    });
    const r429 = await post(server, '/v1/messages', mainLoopBody({ stream: true }));
    expect(r429.status).toBe(429);
    expect(r429.headers.get('retry-after')).toBe('3');
    expect(await r429.json()).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    const r529 = await post(server, '/v1/messages', mainLoopBody({ stream: true }));
    expect(r529.status).toBe(529);
    expect(await r529.json()).toMatchObject({ error: { type: 'overloaded_error' } });
    const r500 = await post(server, '/v1/messages', mainLoopBody());
    expect(r500.status).toBe(500);
    expect(await r500.json()).toMatchObject({ error: { type: 'api_error' } });
    const r401 = await post(server, '/v1/messages', mainLoopBody());
    expect(r401.status).toBe(401);
    expect(await r401.json()).toMatchObject({ error: { type: 'authentication_error' } });
  });

  it('records requests for assertions, with credentials redacted', async () => {
    server = await startScriptedModelServer({ script: [turn.text('ok')] });
    await (
      await post(server, '/v1/messages', mainLoopBody({ stream: true }), { authorization: 'Bearer tok' })
    ).text();
    const [r] = server.requests;
    expect(r).toMatchObject({
      method: 'POST',
      path: '/v1/messages',
      model: 'claude-sonnet-4-5',
      tools: ['Read', 'Write'],
      systemBlocks: ['header', 'You are TestBot.'],
      stream: true,
      mainLoop: true,
      turnIndex: 0,
    });
    expect(r?.system).toContain('You are TestBot.');
    expect(r?.messages).toEqual([{ role: 'user', content: 'hi' }]);
    expect(r?.headers['x-api-key']).toBe('[redacted]');
    expect(r?.headers.authorization).toBe('[redacted]');
    expect(JSON.stringify(server.requests)).not.toContain('sk-ant-secret-value');
  });

  it('counts tokens, answers the connectivity probe, and logs unknown routes with a 404', async () => {
    server = await startScriptedModelServer();
    const count = await post(server, '/v1/messages/count_tokens', mainLoopBody());
    expect(count.status).toBe(200);
    const { input_tokens } = (await count.json()) as { input_tokens: number };
    expect(input_tokens).toBeGreaterThan(0);
    expect((await fetch(`${server.url}/api/hello`, { method: 'HEAD' })).status).toBe(200);
    const unknown = await fetch(`${server.url}/api/oauth/usage`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    expect(server.unknownRequests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/oauth/usage']);
    expect(server.remainingTurns()).toBe(0);
  });

  it('delays a turn and lets a waiter see the request while it is pending', async () => {
    server = await startScriptedModelServer({ script: [turn.text('slow', { delayMs: 50 })] });
    const s = server;
    const seen = s.waitForRequest((r) => r.turnIndex === 0);
    const pending = post(s, '/v1/messages', mainLoopBody());
    const req = await seen;
    expect(req.path).toBe('/v1/messages');
    const res = await pending;
    expect(((await res.json()) as { content: Array<{ text: string }> }).content[0]?.text).toBe('slow');
  });

  it('stops waiting when the client disconnects during a delay and keeps serving', async () => {
    server = await startScriptedModelServer({
      script: [turn.text('never', { delayMs: 60_000 }), turn.text('next')],
    });
    const s = server;
    const ac = new AbortController();
    const abortable = fetch(`${s.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(mainLoopBody()),
      signal: ac.signal,
    }).catch((e: unknown) => e);
    await s.waitForRequest((r) => r.turnIndex === 0);
    ac.abort();
    expect(await abortable).toBeInstanceOf(Error);
    const res = await post(s, '/v1/messages', mainLoopBody());
    expect(((await res.json()) as { content: Array<{ text: string }> }).content[0]?.text).toBe('next');
  });
});
