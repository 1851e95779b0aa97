import type { TaskAttachment } from '@bematic/protocol';
import type { ChatMessage, ChatSurface } from './chat-surface.js';

/** What a request brings besides its text: the thread it was asked in and the files attached. */
export interface RequestExtras {
  /** The thread's earlier messages, decoded and bounded, for the prompt. */
  threadContext?: string;
  attachments: TaskAttachment[];
  /** For the thread: files skipped and why, context clipped. */
  notes: string[];
}

/**
 * One thing a person did on a chat surface, normalised so that Slack and the
 * web console go through the same middleware chain and command service.
 */
export interface InboundRequest {
  kind: 'mention' | 'thread_reply' | 'slash' | 'action';
  surface: ChatSurface;
  userId: string;
  userName?: string;
  channelId: string;
  /**
   * mention: the text with the bot mention removed ("code fix the login bug");
   * thread_reply: the reply text; slash: the text after "/bm"; action: the action id.
   */
  text: string;
  /** Thread to answer in; for a top-level mention, the mention's own ts. */
  threadTs: string | null;
  /** The person's own message (reactions go here). */
  messageTs: string | null;
  /** How people address the app on this surface ("BematicManager", from auth.test); absent where the mention is implicit. */
  appName?: string;
  /** A direct message to the app: the project is the person's default one, not the channel's. */
  direct?: boolean;
  /** block_actions: the button's value (a task id). */
  actionValue?: string;
  receivedAt: number;
  /** Loads the thread context and attachments, only once a task is started; `thread: false` skips the thread. */
  extras?(options: { thread: boolean }): Promise<RequestExtras>;
  /** Reply visible to this person only (slash command responses, errors). */
  respond(message: ChatMessage): Promise<void>;
}

export interface InboundHandler {
  /** Never rejects: failures are reported to the person and audited. */
  handle(request: InboundRequest): Promise<void>;
}
