import { MAX_FRAME_BYTES, type ParseErrorCode, PROTOCOL_VERSION } from './constants.js';
import { Envelope, type Message } from './envelope.js';
import { type MessageType, PAYLOAD_SCHEMAS } from './messages.js';

export interface ParseError {
  code: ParseErrorCode;
  message: string;
  /** Present when the envelope itself was readable. */
  type?: string;
  id?: string;
  /** For UNSUPPORTED_VERSION: the version the peer speaks. */
  version?: number;
}

export type ParseResult = { ok: true; message: Message } | { ok: false; error: ParseError };

export type RawFrame = string | Buffer | ArrayBuffer | Buffer[] | Uint8Array;

export interface ParseOptions {
  maxBytes?: number;
}

function frameByteLength(raw: RawFrame): number {
  if (typeof raw === 'string') return Buffer.byteLength(raw, 'utf8');
  if (Array.isArray(raw)) return raw.reduce((n, b) => n + b.byteLength, 0);
  return raw.byteLength;
}

function frameText(raw: RawFrame): string {
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  if (raw instanceof ArrayBuffer) return Buffer.from(raw).toString('utf8');
  return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8');
}

const fail = (code: ParseErrorCode, message: string, type?: string, id?: string): ParseResult => ({
  ok: false,
  error: { code, message, ...(type !== undefined && { type }), ...(id !== undefined && { id }) },
});

function isMessageType(type: string): type is MessageType {
  return Object.hasOwn(PAYLOAD_SCHEMAS, type);
}

/**
 * The one entry point for every frame that crosses a process boundary.
 * Never throws: anything unacceptable comes back as a coded error.
 */
export function parse(raw: RawFrame, options: ParseOptions = {}): ParseResult {
  try {
    const maxBytes = options.maxBytes ?? MAX_FRAME_BYTES;
    const size = frameByteLength(raw);
    if (size > maxBytes)
      return fail('FRAME_TOO_LARGE', `frame of ${size} bytes exceeds the ${maxBytes}-byte limit`);

    let json: unknown;
    try {
      json = JSON.parse(frameText(raw));
    } catch {
      return fail('INVALID_JSON', 'frame is not valid JSON');
    }

    const envelope = Envelope.safeParse(json);
    if (!envelope.success) {
      return fail('INVALID_ENVELOPE', `envelope invalid: ${summarize(envelope.error.issues)}`);
    }
    const { v, type, id } = envelope.data;
    if (v !== PROTOCOL_VERSION) {
      const refused = fail(
        'UNSUPPORTED_VERSION',
        `protocol version ${v} is not supported (expected ${PROTOCOL_VERSION})`,
        type,
        id,
      );
      if (!refused.ok) refused.error.version = v;
      return refused;
    }
    if (!isMessageType(type)) return fail('UNKNOWN_TYPE', `unknown message type "${type}"`, type, id);

    const payload = PAYLOAD_SCHEMAS[type].safeParse(envelope.data.payload);
    if (!payload.success) {
      return fail('INVALID_PAYLOAD', `${type} payload invalid: ${summarize(payload.error.issues)}`, type, id);
    }
    return { ok: true, message: { ...envelope.data, type, payload: payload.data } as Message };
  } catch (err) {
    // Defensive: a schema or decoder bug must not escape into the caller's socket loop.
    return fail('INVALID_ENVELOPE', `frame could not be read: ${(err as Error).message}`);
  }
}

interface Issue {
  path: PropertyKey[];
  message: string;
}

function summarize(issues: readonly Issue[]): string {
  return issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
