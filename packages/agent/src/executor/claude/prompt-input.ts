import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SDKUserMessage } from '@anthropic-ai/claude-agent-sdk';
import type { TaskAttachment } from '@bematic/protocol';

/** Inside the task's directory, ignored by git through its own .gitignore, so it is never committed. */
export const ATTACHMENTS_DIR = path.join('.bematic', 'attachments');

/** A safe file name: no directories, no leading dots, nothing a shell would trip on. */
function safeName(name: string, taken: Set<string>): string {
  const base =
    path
      .basename(name)
      .replace(/[^A-Za-z0-9._ -]/g, '_')
      .replace(/^\.+/, '')
      .slice(0, 120) || 'attachment';
  let candidate = base;
  for (let n = 2; taken.has(candidate.toLowerCase()); n++) {
    const ext = path.extname(base);
    candidate = `${path.basename(base, ext)}-${n}${ext}`;
  }
  taken.add(candidate.toLowerCase());
  return candidate;
}

/**
 * The first prompt of a task with its attachments: text files are written under `.bematic/attachments/`
 * in the task's directory and named in the prompt; images travel as image content blocks, which the SDK
 * takes as a streamed user message.
 */
export async function promptWithAttachments(
  prompt: string,
  attachments: readonly TaskAttachment[] | undefined,
  cwd: string,
): Promise<string | AsyncIterable<SDKUserMessage>> {
  if (!attachments || attachments.length === 0) return prompt;
  const taken = new Set<string>();
  const texts = attachments.filter((a) => a.kind === 'text');
  const images = attachments.filter((a) => a.kind === 'image');
  const written: string[] = [];
  if (texts.length > 0) {
    const dir = path.join(cwd, ATTACHMENTS_DIR);
    await mkdir(dir, { recursive: true });
    // Never over an existing one (the directory may hold other things of ours).
    await writeFile(path.join(cwd, '.bematic', '.gitignore'), '*\n', { flag: 'wx' }).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    });
    for (const file of texts) {
      const name = safeName(file.name, taken);
      await writeFile(path.join(dir, name), Buffer.from(file.data, 'base64'));
      written.push(path.posix.join('.bematic', 'attachments', name));
    }
  }
  const notes = [
    ...(written.length > 0
      ? [`Files attached to the request, saved in this directory for you to read: ${written.join(', ')}`]
      : []),
    ...(images.length > 0
      ? [`Images attached to the request (shown above): ${images.map((i) => i.name).join(', ')}`]
      : []),
  ];
  const text = `${prompt}\n\n${notes.join('\n')}`;
  if (images.length === 0) return text;
  const message: SDKUserMessage = {
    type: 'user',
    parent_tool_use_id: null,
    message: {
      role: 'user',
      content: [
        ...images.map((i) => ({
          type: 'image' as const,
          source: {
            type: 'base64' as const,
            media_type: i.mediaType as 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp',
            data: i.data,
          },
        })),
        { type: 'text' as const, text },
      ],
    },
  };
  return (async function* () {
    yield message;
  })();
}
