import type { webApi } from '@slack/bolt';
import { z } from 'zod';
import type { RequestExtras } from '../chat/inbound.js';
import { escapeMrkdwn } from '../notifications/mrkdwn.js';
import { downloadSlackFiles, type SlackFileRef, slackFileSchema } from './slack-files.js';
import { decodeSlackText, type SlackNames } from './slack-text.js';

/** How much of a thread goes into the prompt; the newest messages win, the root is always kept. */
export const THREAD_CONTEXT_LIMITS = { messages: 50, chars: 20_000, charsPerMessage: 4_000 } as const;

const replySchema = z.object({
  ts: z.string(),
  user: z.string().optional(),
  bot_id: z.string().optional(),
  username: z.string().optional(),
  text: z.string().optional(),
  files: z.array(slackFileSchema).optional(),
});
const repliesSchema = z.object({ messages: z.array(replySchema).optional() });

export interface ThreadMessage {
  author: string;
  text: string;
}

/** The earlier messages of a thread as Claude reads them: one "author: text" paragraph each, oldest first. */
export function formatThreadContext(messages: readonly ThreadMessage[], left: number): string {
  const lines = messages.map((m) => {
    const text =
      m.text.length > THREAD_CONTEXT_LIMITS.charsPerMessage
        ? `${m.text.slice(0, THREAD_CONTEXT_LIMITS.charsPerMessage)} … (message cut)`
        : m.text;
    return `${m.author}: ${text}`;
  });
  const kept: string[] = [];
  let size = 0;
  let dropped = left;
  // The root says what the thread is about; after it, the newest messages that fit.
  const [root, ...rest] = lines;
  if (root !== undefined) size += root.length;
  for (let i = rest.length - 1; i >= 0; i--) {
    const line = rest[i] ?? '';
    if (size + line.length > THREAD_CONTEXT_LIMITS.chars) {
      dropped += i + 1;
      break;
    }
    size += line.length;
    kept.unshift(line);
  }
  const body = [
    ...(root !== undefined ? [root] : []),
    ...(dropped > 0
      ? [`(${dropped} earlier message${dropped === 1 ? '' : 's'} left out to keep this short)`]
      : []),
    ...kept,
  ];
  return `Earlier messages in the Slack thread this request was asked in, oldest first:\n\n${body.join('\n\n')}`;
}

export interface SlackExtrasDeps {
  client: webApi.WebClient;
  botToken: string;
  names: SlackNames;
  fetchImpl?: typeof fetch;
}

export interface SlackRequestRef {
  channel: string;
  ts: string;
  threadTs?: string;
  files?: SlackFileRef[];
}

/**
 * The thread context (conversations.replies, each message decoded once through slack-text) and the files
 * attached to the request and to the thread before it, downloaded with the bot token.
 */
export async function gatherSlackExtras(
  deps: SlackExtrasDeps,
  request: SlackRequestRef,
  options: { thread: boolean },
): Promise<RequestExtras> {
  const notes: string[] = [];
  let threadContext: string | undefined;
  const threadFiles: SlackFileRef[] = [];
  const inThread = request.threadTs !== undefined && request.threadTs !== request.ts;
  if (options.thread && inThread && request.threadTs) {
    try {
      const raw = await deps.client.conversations.replies({
        channel: request.channel,
        ts: request.threadTs,
        limit: 200,
      });
      const parsed = repliesSchema.safeParse(raw);
      const earlier = (parsed.success ? (parsed.data.messages ?? []) : []).filter(
        (m) => Number(m.ts) < Number(request.ts),
      );
      const recent =
        earlier.length > THREAD_CONTEXT_LIMITS.messages
          ? [earlier[0]!, ...earlier.slice(-(THREAD_CONTEXT_LIMITS.messages - 1))]
          : earlier;
      const messages: ThreadMessage[] = [];
      for (const m of recent) {
        threadFiles.push(...(m.files ?? []));
        const text = (await decodeSlackText(m.text ?? '', deps.names)).trim();
        const names = (m.files ?? []).map((f) => f.name ?? f.id);
        const shown = names.length > 0 ? `${text}${text ? ' ' : ''}[attached: ${names.join(', ')}]` : text;
        if (!shown) continue;
        const author = m.user
          ? `@${(await deps.names.userName(m.user).catch(() => undefined)) ?? m.user}`
          : (m.username ?? 'a bot');
        messages.push({ author, text: shown });
      }
      if (messages.length > 0) threadContext = formatThreadContext(messages, earlier.length - recent.length);
      if (threadContext?.includes('left out to keep this short'))
        notes.push('Only part of this thread was given to Claude: it is long.');
    } catch {
      notes.push('Could not read the earlier messages of this thread; Claude sees only this request.');
    }
  }
  const files = [...threadFiles, ...(request.files ?? [])];
  const downloaded =
    files.length > 0
      ? await downloadSlackFiles(files, deps.botToken, deps.fetchImpl)
      : { attachments: [], skipped: [] };
  if (downloaded.skipped.length > 0)
    notes.push(`Not given to Claude:\n${downloaded.skipped.map((s) => `• ${escapeMrkdwn(s)}`).join('\n')}`);
  return { ...(threadContext ? { threadContext } : {}), attachments: downloaded.attachments, notes };
}
