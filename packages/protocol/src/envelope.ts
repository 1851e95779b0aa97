import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { PROTOCOL_VERSION } from './constants.js';
import { type MessageType, PAYLOAD_SCHEMAS, type PayloadOf } from './messages.js';

export const Envelope = z.object({
  v: z.number().int().positive(),
  type: z.string().min(1).max(64),
  id: z.string().min(1).max(200),
  ts: z.number().int().nonnegative(),
  payload: z.unknown(),
});
export type Envelope = z.infer<typeof Envelope>;

/** A validated message: the envelope with its payload typed by `type`. */
export type Message<T extends MessageType = MessageType> = {
  [K in T]: { v: number; type: K; id: string; ts: number; payload: PayloadOf<K> };
}[T];

export function createMessage<T extends MessageType>(
  type: T,
  payload: PayloadOf<T>,
  now: number = Date.now(),
): Message<T> {
  return { v: PROTOCOL_VERSION, type, id: randomUUID(), ts: now, payload } as Message<T>;
}

/** A frame the sender built wrongly: it never reaches the wire. */
export class OutgoingMessageError extends Error {
  constructor(
    readonly type: string,
    readonly issues: string,
  ) {
    super(`refusing to send an invalid ${type}: ${issues}`);
    this.name = 'OutgoingMessageError';
  }
}

/**
 * Checks a message against the same schemas `parse` applies on the receiving side. Returns the problem, or
 * null when the message may be sent.
 */
export function checkOutgoing(message: Message): OutgoingMessageError | null {
  const envelope = Envelope.safeParse(message);
  if (!envelope.success) return new OutgoingMessageError(String(message.type), issuesOf(envelope.error));
  const schema = PAYLOAD_SCHEMAS[message.type];
  if (!schema) return new OutgoingMessageError(String(message.type), 'unknown message type');
  const payload = schema.safeParse(message.payload);
  if (!payload.success) return new OutgoingMessageError(message.type, issuesOf(payload.error));
  return null;
}

/**
 * The one way a message becomes a frame, on both sides: validated first, so a bug that builds a bad frame is
 * an error at the sender (thrown: OutgoingMessageError), never a bad frame on the wire.
 */
export function serialize(message: Message): string {
  const problem = checkOutgoing(message);
  if (problem) throw problem;
  return JSON.stringify(message);
}

/**
 * A refusal addressed to a peer that speaks another protocol version, in that version's envelope so the peer
 * can read it. Only for the answer that tells it so; everything else is sent at PROTOCOL_VERSION.
 */
export function serializeForVersion(message: Message, version: number): string {
  const problem = checkOutgoing(message);
  if (problem) throw problem;
  return JSON.stringify({ ...message, v: version });
}

function issuesOf(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
