import type { ReplyTurn, ScriptedUsage } from './script.js';

export interface MessageShape {
  id: string;
  model: string;
  content: Array<Record<string, unknown>>;
  stopReason: string;
  usage: Required<ScriptedUsage>;
}

const DEFAULT_USAGE: Required<ScriptedUsage> = {
  input_tokens: 10,
  output_tokens: 5,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
};

/** Resolves a reply turn into the concrete message the server answers with. */
export function toMessage(
  reply: ReplyTurn,
  model: string,
  messageId: string,
  nextToolId: () => string,
): MessageShape {
  const content = reply.content.map((b) =>
    b.type === 'text'
      ? { type: 'text', text: b.text }
      : { type: 'tool_use', id: b.id ?? nextToolId(), name: b.name, input: b.input },
  );
  const hasTool = reply.content.some((b) => b.type === 'tool_use');
  return {
    id: messageId,
    model,
    content,
    stopReason: reply.stopReason ?? (hasTool ? 'tool_use' : 'end_turn'),
    usage: { ...DEFAULT_USAGE, ...reply.usage },
  };
}

export function toJsonBody(m: MessageShape): Record<string, unknown> {
  return {
    id: m.id,
    type: 'message',
    role: 'assistant',
    model: m.model,
    content: m.content,
    stop_reason: m.stopReason,
    stop_sequence: null,
    usage: m.usage,
  };
}

const event = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

/** Splits a string into at most `parts` pieces so deltas are really incremental. */
function chunks(s: string, parts: number): string[] {
  if (s.length === 0) return [''];
  const size = Math.ceil(s.length / parts);
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

/** The SSE event sequence of a streamed Messages API response. */
export function toSseEvents(m: MessageShape): string[] {
  const out: string[] = [];
  out.push(
    event('message_start', {
      type: 'message_start',
      message: {
        ...toJsonBody(m),
        content: [],
        stop_reason: null,
        usage: { ...m.usage, output_tokens: 1 },
      },
    }),
  );
  out.push(event('ping', { type: 'ping' }));
  m.content.forEach((b, index) => {
    if (b.type === 'text') {
      out.push(
        event('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'text', text: '' },
        }),
      );
      for (const text of chunks(String(b.text), 2)) {
        out.push(
          event('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'text_delta', text },
          }),
        );
      }
    } else {
      out.push(
        event('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} },
        }),
      );
      for (const partial_json of chunks(JSON.stringify(b.input), 2)) {
        out.push(
          event('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json },
          }),
        );
      }
    }
    out.push(event('content_block_stop', { type: 'content_block_stop', index }));
  });
  out.push(
    event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: m.stopReason, stop_sequence: null },
      usage: m.usage,
    }),
  );
  out.push(event('message_stop', { type: 'message_stop' }));
  return out;
}
