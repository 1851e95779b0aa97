import { describe, expect, it } from 'vitest';
import type { ChatSurface } from '../chat/chat-surface.js';
import {
  type InboundContext,
  messageEventSchema,
  stripBotMention,
  threadReplyRequest,
} from './slack-inbound.js';

const surface: ChatSurface = {
  name: 'slack',
  post: async () => ({ channelId: 'C1', ts: '1.1' }),
  update: async () => {},
  postEphemeral: async () => {},
  addReaction: async () => {},
  removeReaction: async () => {},
  uploadFile: async () => {},
};
const ctx: InboundContext = { surface, botUserId: 'UBOT', now: () => 42 };
const reply = (fields: Record<string, unknown>) =>
  threadReplyRequest(
    messageEventSchema.parse({
      type: 'message',
      channel: 'C1',
      user: 'U1',
      text: 'hi',
      ts: '2.0',
      thread_ts: '1.0',
      ...fields,
    }),
    ctx,
  );

describe('stripBotMention', () => {
  it('removes every form of the bot mention and leaves other mentions', () => {
    expect(stripBotMention('<@UBOT> code fix it', 'UBOT')).toBe('code fix it');
    expect(stripBotMention('hey <@UBOT|bematic>   review <@U2>', 'UBOT')).toBe('hey review <@U2>');
    expect(stripBotMention('  <@UBOT>  ', 'UBOT')).toBe('');
    expect(stripBotMention('<@UBOTX> stays', 'UBOT')).toBe('<@UBOTX> stays');
  });
});

describe('threadReplyRequest', () => {
  it('accepts a person replying in a thread', () => {
    expect(reply({})).toMatchObject({
      kind: 'thread_reply',
      threadTs: '1.0',
      messageTs: '2.0',
      receivedAt: 42,
    });
    expect(reply({ subtype: 'thread_broadcast' })?.kind).toBe('thread_reply');
  });

  it('ignores top-level messages, edits, bots, itself and replies that mention it', () => {
    expect(reply({ thread_ts: undefined })).toBeNull();
    expect(reply({ thread_ts: '2.0' })).toBeNull();
    expect(reply({ subtype: 'message_changed' })).toBeNull();
    expect(reply({ bot_id: 'B1' })).toBeNull();
    expect(reply({ user: 'UBOT' })).toBeNull();
    expect(reply({ text: '<@UBOT> status' })).toBeNull();
  });
});
