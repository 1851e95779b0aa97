import type { SlackBlock } from './render.js';

export interface SlackUser {
  id: string;
  name: string;
  realName?: string;
  isBot?: boolean;
  isAdmin?: boolean;
  tz?: string;
}

export interface SlackChannel {
  id: string;
  name: string;
  isPrivate: boolean;
  /** A direct message conversation between a person and the app (Slack ids start with D). */
  isIm: boolean;
}

export interface MessageVersion {
  text: string;
  blocks?: SlackBlock[];
}

export interface SlackFile {
  id: string;
  filename: string;
  title?: string;
  length: number;
  content?: Buffer;
  mimetype?: string;
}

export interface SlackMessage {
  channel: string;
  ts: string;
  threadTs?: string;
  /** Author: a person's user id, or the bot's user id for bot posts. */
  user: string;
  botId?: string;
  text: string;
  blocks?: SlackBlock[];
  /** reaction name → user ids, in the order they reacted. */
  reactions: Map<string, string[]>;
  /** Earlier versions, oldest first; the current one is text/blocks. */
  edits: MessageVersion[];
  files: SlackFile[];
  deleted: boolean;
}

export interface EphemeralMessage {
  channel: string;
  user: string;
  ts: string;
  threadTs?: string;
  text: string;
  blocks?: SlackBlock[];
  via: 'chat.postEphemeral' | 'response_url';
}

export interface OpenedView {
  id: string;
  triggerId: string;
  view: unknown;
}

/** The workspace a Slack emulator holds: channels, messages, users, ephemerals, views, files. */
export class Workspace {
  readonly users = new Map<string, SlackUser>();
  readonly channels = new Map<string, SlackChannel>();
  private readonly messages = new Map<string, SlackMessage[]>();
  readonly ephemeralMessages: EphemeralMessage[] = [];
  readonly views: OpenedView[] = [];
  readonly files = new Map<string, SlackFile>();
  private seq = 0;
  private readonly epochSec: number;

  constructor(now: () => number) {
    this.epochSec = Math.floor(now() / 1000);
  }

  /** Slack timestamps are unique per channel and sort in posting order. */
  nextTs(): string {
    this.seq += 1;
    return `${this.epochSec}.${String(this.seq).padStart(6, '0')}`;
  }

  ensureChannel(id: string): SlackChannel {
    let channel = this.channels.get(id);
    if (!channel) {
      channel = { id, name: id.toLowerCase(), isPrivate: id.startsWith('D'), isIm: id.startsWith('D') };
      this.channels.set(id, channel);
    }
    return channel;
  }

  ensureUser(id: string): SlackUser {
    let user = this.users.get(id);
    if (!user) {
      user = { id, name: id.toLowerCase() };
      this.users.set(id, user);
    }
    return user;
  }

  addMessage(
    input: Omit<SlackMessage, 'ts' | 'reactions' | 'edits' | 'files' | 'deleted'> & { files?: SlackFile[] },
  ): SlackMessage {
    this.ensureChannel(input.channel);
    const message: SlackMessage = {
      ...input,
      ts: this.nextTs(),
      reactions: new Map(),
      edits: [],
      files: input.files ?? [],
      deleted: false,
    };
    const list = this.messages.get(input.channel) ?? [];
    list.push(message);
    this.messages.set(input.channel, list);
    return message;
  }

  find(channel: string, ts: string): SlackMessage | undefined {
    return this.messages.get(channel)?.find((m) => m.ts === ts && !m.deleted);
  }

  channelMessages(channel: string): SlackMessage[] {
    return (this.messages.get(channel) ?? []).filter((m) => !m.deleted);
  }

  /** The root message and its replies, in ts order. */
  thread(channel: string, threadTs: string): SlackMessage[] {
    return this.channelMessages(channel).filter((m) => m.ts === threadTs || m.threadTs === threadTs);
  }

  /** Top-level messages, as conversations.history lists them. */
  history(channel: string): SlackMessage[] {
    return this.channelMessages(channel).filter((m) => m.threadTs === undefined || m.threadTs === m.ts);
  }
}
