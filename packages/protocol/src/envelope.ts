import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { PROTOCOL_VERSION } from './constants.js';
import type { MessageType, PayloadOf } from './messages.js';

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

export function serialize(message: Message): string {
  return JSON.stringify(message);
}
