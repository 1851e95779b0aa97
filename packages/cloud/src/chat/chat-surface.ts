/**
 * A place where conversations happen: Slack (through Bolt's Web API client) or
 * the local web console. Messages use Slack Block Kit; the console renders the
 * same blocks, so every surface shows the same thread.
 */
export interface ChatBlock {
  type: string;
  [key: string]: unknown;
}

export interface ChatMessage {
  /** Plain-text fallback (notifications, screen readers). */
  text: string;
  blocks?: ChatBlock[];
}

export interface PostedMessage {
  channelId: string;
  ts: string;
}

/** A text file posted into a thread (a patch, a log). */
export interface ChatFile {
  filename: string;
  content: string;
  title?: string;
  /** Posted with the file, as its message. */
  comment?: string;
}

export interface UpdateOptions {
  scheduled?: boolean;
}

export interface ChatSurface {
  readonly name: 'slack' | 'console';
  /** Post into a thread (threadTs) or at the channel top level. */
  post(channelId: string, message: ChatMessage, threadTs?: string | null): Promise<PostedMessage>;
  /**
   * Edits a posted message. A `scheduled` caller (the task message's update scheduler) waits out rate limits
   * itself, so the surface makes one request and hands a rate limit back at once; any other edit (an approval
   * decided, a plan changed) is retried by the surface until it lands.
   */
  update(channelId: string, ts: string, message: ChatMessage, options?: UpdateOptions): Promise<void>;
  /** Visible to one user only; falls back to a normal post where the surface has no ephemerals. */
  postEphemeral(
    channelId: string,
    userId: string,
    message: ChatMessage,
    threadTs?: string | null,
  ): Promise<void>;
  addReaction(channelId: string, ts: string, name: string): Promise<void>;
  removeReaction(channelId: string, ts: string, name: string): Promise<void>;
  /** Shares a file in a thread (Slack: files.uploadV2). */
  uploadFile(channelId: string, file: ChatFile, threadTs?: string | null): Promise<void>;
}
