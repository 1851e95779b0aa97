/** Token counts a scripted turn reports, in the Messages API's own field names. */
export interface ScriptedUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

export type ScriptedBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string };

/** One model response: content blocks streamed in order. */
export interface ReplyTurn {
  kind: 'reply';
  content: ScriptedBlock[];
  usage?: ScriptedUsage;
  /** Defaults to `tool_use` when the content has a tool_use block, else `end_turn`. */
  stopReason?: 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence';
  /** Wait this long before answering (lets a test cancel mid-request). */
  delayMs?: number;
}

/** An HTTP error answer in the Messages API error shape. */
export interface ErrorTurn {
  kind: 'error';
  status: number;
  errorType: string;
  message: string;
  /** Sent as the `retry-after` header (seconds). */
  retryAfterSec?: number;
  /** Sent as `x-should-retry`, which API clients honour over their own retry policy. */
  shouldRetry?: boolean;
  delayMs?: number;
}

export type ScriptedTurn = ReplyTurn | ErrorTurn;
export type ModelScript = ScriptedTurn[];

export interface TurnOptions {
  usage?: ScriptedUsage;
  delayMs?: number;
  stopReason?: ReplyTurn['stopReason'];
}

const ERROR_TYPES: Record<number, { type: string; message: string }> = {
  400: { type: 'invalid_request_error', message: 'Invalid request' },
  401: { type: 'authentication_error', message: 'invalid x-api-key' },
  403: {
    type: 'permission_error',
    message: 'Your API key does not have permission to use the specified resource.',
  },
  404: { type: 'not_found_error', message: 'Not found' },
  413: { type: 'request_too_large', message: 'Request exceeds the maximum allowed number of bytes.' },
  429: {
    type: 'rate_limit_error',
    message: 'Number of request tokens has exceeded your per-minute rate limit',
  },
  500: { type: 'api_error', message: 'Internal server error' },
  529: { type: 'overloaded_error', message: 'Overloaded' },
};

/** Builders for content blocks, to combine several in one turn with `turn.reply`. */
export const block = {
  text: (text: string): ScriptedBlock => ({ type: 'text', text }),
  toolUse: (name: string, input: Record<string, unknown>, id?: string): ScriptedBlock =>
    id === undefined ? { type: 'tool_use', name, input } : { type: 'tool_use', name, input, id },
};

const reply = (content: ScriptedBlock[], opts: TurnOptions = {}): ReplyTurn => ({
  kind: 'reply',
  content,
  ...opts,
});

/** Builders for scripted turns: `turn.text('hi')`, `turn.toolUse('Write', {...})`, `turn.error(529)`. */
export const turn = {
  reply,
  text: (text: string, opts?: TurnOptions): ReplyTurn => reply([block.text(text)], opts),
  toolUse: (name: string, input: Record<string, unknown>, opts?: TurnOptions): ReplyTurn =>
    reply([block.toolUse(name, input)], opts),
  /** Some text followed by one tool call, as a model usually answers. */
  textThenTool: (text: string, name: string, input: Record<string, unknown>, opts?: TurnOptions): ReplyTurn =>
    reply([block.text(text), block.toolUse(name, input)], opts),
  error: (
    status: number,
    opts: {
      message?: string;
      errorType?: string;
      retryAfterSec?: number;
      shouldRetry?: boolean;
      delayMs?: number;
    } = {},
  ): ErrorTurn => {
    const known = ERROR_TYPES[status] ?? {
      type: status >= 500 ? 'api_error' : 'invalid_request_error',
      message: 'Error',
    };
    const out: ErrorTurn = {
      kind: 'error',
      status,
      errorType: opts.errorType ?? known.type,
      message: opts.message ?? known.message,
    };
    if (opts.retryAfterSec !== undefined) out.retryAfterSec = opts.retryAfterSec;
    else if (status === 429) out.retryAfterSec = 0;
    if (opts.shouldRetry !== undefined) out.shouldRetry = opts.shouldRetry;
    if (opts.delayMs !== undefined) out.delayMs = opts.delayMs;
    return out;
  },
};
