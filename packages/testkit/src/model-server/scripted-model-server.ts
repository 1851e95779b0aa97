/**
 * Scripted Anthropic Messages API server — the model double at the network edge.
 *
 * Point Claude Code at it with `ANTHROPIC_BASE_URL=server.url` and any
 * `ANTHROPIC_API_KEY`. It speaks enough of the Messages API for Claude Code:
 *
 * - `POST /v1/messages` — streaming (SSE: message_start, content_block_start /
 *   delta / stop for text and tool_use with input_json_delta, message_delta with
 *   stop_reason + usage, message_stop) and non-streaming JSON;
 * - `POST /v1/messages/count_tokens` — a rough estimate;
 * - `HEAD /api/hello` — Claude Code's connectivity probe, answered 200;
 * - anything else — recorded in `unknownRequests` and answered with a 404 in the
 *   API's error shape, so new start-up calls of Claude Code never break a test.
 *
 * Script: a list of turns (`turn.text`, `turn.toolUse`, `turn.reply`,
 * `turn.error`). Only *main-loop* requests consume turns — by default those that
 * offer tools (Claude Code's side requests such as title generation use the same
 * model but offer none), or whose model is `mainModel` when given — so side
 * requests (title generation, quota probes, small-model helpers) get
 * `sideReply` and never shift the script. When the script runs out, main-loop
 * requests get `whenExhausted` (a plain "Done." by default) so a run always ends.
 *
 * Every request is recorded in `requests` (secrets redacted from headers) for
 * assertions: model, system prompt, tool names offered, messages, stream flag.
 *
 * ```ts
 * const server = await startScriptedModelServer({
 *   script: [turn.toolUse('Write', { file_path: 'a.txt', content: 'hi' }), turn.text('Wrote it.')],
 * });
 * // ... run Claude Code with ANTHROPIC_BASE_URL = server.url
 * expect(server.mainLoopRequests()[0]?.tools).toEqual(['Read', 'Write']);
 * await server.close();
 * ```
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ModelScript, type ScriptedTurn, turn } from './script.js';
import { toJsonBody, toMessage, toSseEvents } from './sse.js';

export interface RecordedRequest {
  seq: number;
  method: string;
  path: string;
  /** Lower-cased header names; credentials replaced by `[redacted]`. */
  headers: Record<string, string>;
  body: unknown;
  model: string | undefined;
  /** System prompt text (blocks joined with a blank line). */
  system: string;
  /** System prompt blocks as sent (Claude Code prepends its own header blocks). */
  systemBlocks: string[];
  /** Names of the tools offered to the model, in request order. */
  tools: string[];
  messages: unknown[];
  stream: boolean;
  mainLoop: boolean;
  /** Index in the script of the turn that answered, when one did. */
  turnIndex: number | undefined;
  /** When the request arrived and when its answer started (epoch ms), to show requests overlapping. */
  receivedAt: number;
  answeredAt: number | undefined;
  /** For conversation scripts: the marker whose script answered. */
  conversation: string | undefined;
}

export interface ScriptedModelServerOptions {
  script?: ModelScript;
  /** Which requests consume script turns. Default: offers tools, or model equals `mainModel`. */
  isMainLoop?: (req: RecordedRequest) => boolean;
  mainModel?: string;
  /** Answer to requests that are not main-loop. */
  sideReply?: ScriptedTurn;
  /** Answer to main-loop requests once the script is used up. */
  whenExhausted?: ScriptedTurn;
}

export interface ScriptedModelServer {
  readonly url: string;
  readonly requests: readonly RecordedRequest[];
  /** Requests to paths the server does not implement. */
  readonly unknownRequests: readonly RecordedRequest[];
  mainLoopRequests(): RecordedRequest[];
  /** Replaces the script and rewinds to its first turn. */
  setScript(script: ModelScript): void;
  /**
   * One script per conversation, for tasks running at once: a main-loop request
   * is answered from the script whose marker (a key) appears in its first user
   * message; requests matching no marker use the plain script.
   */
  setConversations(scripts: Record<string, ModelScript>): void;
  /** Main-loop requests arriving from now on wait (recorded) until `release()`. */
  hold(): void;
  release(): void;
  /** Script turns not consumed yet. */
  remainingTurns(): number;
  /** Resolves with the first recorded request (past or future) matching `predicate`. */
  waitForRequest(predicate: (req: RecordedRequest) => boolean): Promise<RecordedRequest>;
  close(): Promise<void>;
}

const SECRET_HEADERS = new Set(['x-api-key', 'authorization', 'proxy-authorization', 'cookie']);

function redactHeaders(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    out[k] = SECRET_HEADERS.has(k) ? '[redacted]' : Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function systemBlocks(system: unknown): string[] {
  if (typeof system === 'string') return [system];
  if (!Array.isArray(system)) return [];
  return system.flatMap((b) => (isRecord(b) && typeof b.text === 'string' ? [b.text] : []));
}

function toolNames(tools: unknown): string[] {
  if (!Array.isArray(tools)) return [];
  return tools.flatMap((t) => (isRecord(t) && typeof t.name === 'string' ? [t.name] : []));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  const raw = Buffer.concat(parts).toString('utf8');
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/** Text of the first user message (where Claude Code puts the task's prompt). */
function firstUserText(messages: unknown[]): string {
  const m = messages.find((x) => isRecord(x) && x.role === 'user');
  if (!isRecord(m)) return '';
  if (typeof m.content === 'string') return m.content;
  if (!Array.isArray(m.content)) return '';
  return m.content.flatMap((b) => (isRecord(b) && typeof b.text === 'string' ? [b.text] : [])).join('\n');
}

const defaultIsMainLoop =
  (mainModel: string | undefined) =>
  (req: RecordedRequest): boolean =>
    req.tools.length > 0 || (mainModel !== undefined && req.model === mainModel);

export async function startScriptedModelServer(
  opts: ScriptedModelServerOptions = {},
): Promise<ScriptedModelServer> {
  let script: ModelScript = [...(opts.script ?? [])];
  let cursor = 0;
  let conversations = new Map<string, { script: ModelScript; cursor: number }>();
  let held: Array<() => void> | null = null;
  let seq = 0;
  let ids = 0;
  const requests: RecordedRequest[] = [];
  const unknownRequests: RecordedRequest[] = [];
  const recorded = new EventEmitter();
  const isMainLoop = opts.isMainLoop ?? defaultIsMainLoop(opts.mainModel);
  const sideReply = opts.sideReply ?? turn.text('OK');
  const whenExhausted = opts.whenExhausted ?? turn.text('Done.');

  const record = (req: IncomingMessage, path: string, body: unknown): RecordedRequest => {
    const b = isRecord(body) ? body : {};
    const r: RecordedRequest = {
      seq: seq++,
      method: req.method ?? 'GET',
      path,
      headers: redactHeaders(req.headers),
      body,
      model: typeof b.model === 'string' ? b.model : undefined,
      system: systemBlocks(b.system).join('\n\n'),
      systemBlocks: systemBlocks(b.system),
      tools: toolNames(b.tools),
      messages: Array.isArray(b.messages) ? b.messages : [],
      stream: b.stream === true,
      mainLoop: false,
      turnIndex: undefined,
      receivedAt: Date.now(),
      answeredAt: undefined,
      conversation: undefined,
    };
    return r;
  };

  const publish = (r: RecordedRequest): void => {
    requests.push(r);
    recorded.emit('request', r);
  };

  /** Waits `ms` unless the client goes away first; resolves false if it did. */
  const delay = (ms: number, res: ServerResponse): Promise<boolean> =>
    new Promise((resolve) => {
      if (ms <= 0) return resolve(true);
      const timer = setTimeout(() => {
        res.off('close', onClose);
        resolve(true);
      }, ms);
      const onClose = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      res.once('close', onClose);
    });

  const answer = async (r: RecordedRequest, t: ScriptedTurn, res: ServerResponse): Promise<void> => {
    if (t.delayMs !== undefined && !(await delay(t.delayMs, res))) return;
    const requestId = `req_scripted_${r.seq}`;
    if (t.kind === 'error') {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'request-id': requestId };
      if (t.retryAfterSec !== undefined) headers['retry-after'] = String(t.retryAfterSec);
      if (t.shouldRetry !== undefined) headers['x-should-retry'] = String(t.shouldRetry);
      res.writeHead(t.status, headers);
      res.end(
        JSON.stringify({
          type: 'error',
          error: { type: t.errorType, message: t.message },
          request_id: requestId,
        }),
      );
      return;
    }
    const message = toMessage(
      t,
      r.model ?? 'claude-scripted',
      `msg_scripted_${r.seq}`,
      () => `toolu_scripted_${++ids}`,
    );
    if (!r.stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': requestId });
      res.end(JSON.stringify(toJsonBody(message)));
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'request-id': requestId,
    });
    for (const e of toSseEvents(message)) res.write(e);
    res.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const body = await readBody(req);
    const r = record(req, path, body);

    if (req.method === 'POST' && path === '/v1/messages') {
      r.mainLoop = isMainLoop(r);
      let t: ScriptedTurn;
      const first = firstUserText(r.messages);
      const marker = r.mainLoop ? [...conversations.keys()].find((k) => first.includes(k)) : undefined;
      const own = marker === undefined ? undefined : conversations.get(marker);
      if (!r.mainLoop) t = sideReply;
      else if (own) {
        r.conversation = marker;
        r.turnIndex = own.cursor;
        t = own.script[own.cursor++] ?? whenExhausted;
      } else if (cursor < script.length) {
        r.turnIndex = cursor;
        t = script[cursor++] as ScriptedTurn;
      } else t = whenExhausted;
      publish(r);
      if (r.mainLoop && held) await new Promise<void>((resolve) => held?.push(resolve));
      r.answeredAt = Date.now();
      await answer(r, t, res);
      return;
    }
    publish(r);
    if (req.method === 'POST' && path === '/v1/messages/count_tokens') {
      const size = JSON.stringify(body ?? '').length;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ input_tokens: Math.max(1, Math.ceil(size / 4)) }));
      return;
    }
    if ((req.method === 'HEAD' || req.method === 'GET') && path === '/api/hello') {
      // Claude Code's connectivity probe.
      res.writeHead(200).end();
      return;
    }
    unknownRequests.push(r);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: `No route for ${path}` } }),
    );
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'api_error', message: String(err) } }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    unknownRequests,
    mainLoopRequests: () => requests.filter((r) => r.mainLoop),
    setScript(next) {
      script = [...next];
      cursor = 0;
    },
    setConversations(scripts) {
      conversations = new Map(Object.entries(scripts).map(([k, v]) => [k, { script: [...v], cursor: 0 }]));
    },
    hold() {
      held ??= [];
    },
    release() {
      const waiting = held ?? [];
      held = null;
      for (const go of waiting) go();
    },
    remainingTurns: () => script.length - cursor,
    waitForRequest(predicate) {
      const seen = requests.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => {
        const onRequest = (r: RecordedRequest): void => {
          if (!predicate(r)) return;
          recorded.off('request', onRequest);
          resolve(r);
        };
        recorded.on('request', onRequest);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
