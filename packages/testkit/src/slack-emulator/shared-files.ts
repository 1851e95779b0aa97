import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SlackIdentity } from './identity.js';
import type { FieldValue } from './request-body.js';
import { stringField } from './request-body.js';
import type { SlackFile, SlackMessage, Workspace } from './workspace.js';

/** A file a person attaches to a message they post (emulator input). */
export interface AttachedFile {
  name: string;
  mimetype: string;
  content: Buffer | string;
}

type Fields = Map<string, FieldValue>;
type ApiResult = { ok: boolean; [key: string]: unknown };

/** Stores a person's attachments as Slack files, each downloadable from its url_private with the bot token. */
export function storeAttachedFiles(workspace: Workspace, files: readonly AttachedFile[] = []): SlackFile[] {
  return files.map((f) => {
    const id = `F${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`;
    const content = typeof f.content === 'string' ? Buffer.from(f.content) : f.content;
    const file: SlackFile = {
      id,
      filename: f.name,
      title: f.name,
      length: content.length,
      content,
      mimetype: f.mimetype,
    };
    workspace.files.set(id, file);
    return file;
  });
}

/** The file object Slack puts on message events and in conversations.replies. */
export function fileJson(file: SlackFile, baseUrl: string): Record<string, unknown> {
  const url = `${baseUrl}/files-pri/${file.id}/${encodeURIComponent(file.filename)}`;
  return {
    id: file.id,
    name: file.filename,
    title: file.title ?? file.filename,
    mimetype: file.mimetype ?? 'application/octet-stream',
    filetype: file.filename.split('.').pop() ?? '',
    size: file.content?.length ?? file.length,
    url_private: url,
    url_private_download: `${url}?download=1`,
  };
}

/** conversations.replies: a thread's root and replies, oldest first, with their files. */
export function conversationsReplies(
  workspace: Workspace,
  baseUrl: () => string,
  messageJson: (m: SlackMessage) => Record<string, unknown>,
): (fields: Fields) => ApiResult {
  return (fields) => {
    const channel = stringField(fields, 'channel') ?? '';
    const ts = stringField(fields, 'ts') ?? '';
    if (!workspace.channels.has(channel)) return { ok: false, error: 'channel_not_found' };
    const root = workspace.find(channel, ts);
    if (!root) return { ok: false, error: 'thread_not_found' };
    const limit = Math.min(Number(stringField(fields, 'limit') ?? 1000) || 1000, 1000);
    const messages = workspace.thread(channel, root.threadTs ?? root.ts).slice(0, limit);
    return {
      ok: true,
      has_more: false,
      messages: messages.map((m) => ({
        ...messageJson(m),
        ...(m.files.length > 0 ? { files: m.files.map((f) => fileJson(f, baseUrl())) } : {}),
      })),
    };
  };
}

/** GET /files-pri/<id>/<name>: the file's bytes for the bot token only, as Slack serves url_private. */
export function serveFile(
  workspace: Workspace,
  identity: SlackIdentity,
  path: string,
  authorization: string | undefined,
  res: ServerResponse,
): void {
  const id = path.split('/')[0] ?? '';
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  const file = workspace.files.get(id);
  // Slack answers an unauthenticated url_private with its sign-in page, not the file.
  if (token !== identity.botToken) {
    res.writeHead(302, { location: 'https://slack.com/signin' }).end();
    return;
  }
  if (!file?.content) {
    res.writeHead(404).end('file not found');
    return;
  }
  res
    .writeHead(200, {
      'content-type': file.mimetype ?? 'application/octet-stream',
      'content-length': String(file.content.length),
    })
    .end(file.content);
}
