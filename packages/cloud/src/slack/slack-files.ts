import { ATTACHMENT_LIMITS, base64Bytes, IMAGE_MEDIA_TYPES, type TaskAttachment } from '@bematic/protocol';
import { z } from 'zod';

/** The parts of a Slack file object we use. */
export const slackFileSchema = z.object({
  id: z.string().min(1),
  name: z.string().optional(),
  title: z.string().optional(),
  mimetype: z.string().optional(),
  size: z.number().nonnegative().optional(),
  url_private: z.string().optional(),
  url_private_download: z.string().optional(),
});
export type SlackFileRef = z.infer<typeof slackFileSchema>;

export interface DownloadedFiles {
  attachments: TaskAttachment[];
  /** One line per file left out, saying why. */
  skipped: string[];
}

const kb = (n: number): string =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`;

/** Text is what decodes as UTF-8 without NULs, whatever Slack guessed its type to be. */
function asText(bytes: Buffer): boolean {
  if (bytes.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Downloads files with the bot token (url_private needs `Authorization: Bearer`), oldest first, within the
 * per-file and total limits TASK_SUBMIT allows: images become image content, text becomes a file for Claude
 * to read, anything else is skipped with a reason.
 */
export async function downloadSlackFiles(
  files: readonly SlackFileRef[],
  botToken: string,
  fetchImpl: typeof fetch = fetch,
): Promise<DownloadedFiles> {
  const attachments: TaskAttachment[] = [];
  const skipped: string[] = [];
  let total = 0;
  const seen = new Set<string>();
  for (const file of files) {
    if (seen.has(file.id)) continue;
    seen.add(file.id);
    const name = file.name ?? file.title ?? file.id;
    const url = file.url_private_download ?? file.url_private;
    if (!url) {
      skipped.push(`${name}: Slack gave no download link`);
      continue;
    }
    if (attachments.length >= ATTACHMENT_LIMITS.files) {
      skipped.push(`${name}: at most ${ATTACHMENT_LIMITS.files} files reach Claude`);
      continue;
    }
    const room = Math.min(ATTACHMENT_LIMITS.fileBytes, ATTACHMENT_LIMITS.totalBytes - total);
    if (file.size !== undefined && file.size > room) {
      skipped.push(tooBig(name, file.size));
      continue;
    }
    let bytes: Buffer;
    try {
      const response = await fetchImpl(url, {
        headers: { authorization: `Bearer ${botToken}` },
        redirect: 'manual',
      });
      if (!response.ok) {
        skipped.push(`${name}: download failed (HTTP ${response.status})`);
        continue;
      }
      bytes = Buffer.from(await response.arrayBuffer());
    } catch (err) {
      skipped.push(`${name}: download failed (${err instanceof Error ? err.message : String(err)})`);
      continue;
    }
    if (bytes.length > room) {
      skipped.push(tooBig(name, bytes.length));
      continue;
    }
    const mediaType = (file.mimetype ?? '').toLowerCase();
    const image = (IMAGE_MEDIA_TYPES as readonly string[]).includes(mediaType);
    if (!image && !asText(bytes)) {
      skipped.push(
        `${name}: ${mediaType || 'this kind of file'} cannot be given to Claude (images and text only)`,
      );
      continue;
    }
    const attachment: TaskAttachment = {
      name,
      kind: image ? 'image' : 'text',
      mediaType: image ? mediaType : mediaType.startsWith('text/') ? mediaType : 'text/plain',
      data: bytes.toString('base64'),
    };
    total += base64Bytes(attachment.data);
    attachments.push(attachment);
  }
  return { attachments, skipped };
}

function tooBig(name: string, size: number): string {
  return size <= ATTACHMENT_LIMITS.fileBytes
    ? `${name} (${kb(size)}): over the ${kb(ATTACHMENT_LIMITS.totalBytes)} all attachments may take together`
    : `${name} (${kb(size)}): over the ${kb(ATTACHMENT_LIMITS.fileBytes)} limit per file`;
}
