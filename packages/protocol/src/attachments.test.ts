import { describe, expect, it } from 'vitest';
import { ATTACHMENT_LIMITS, MAX_FRAME_BYTES } from './constants.js';
import { createMessage, serialize } from './envelope.js';
import { base64Bytes, TaskSubmit } from './messages.js';
import { parse } from './parse.js';

const base = {
  taskId: 't1',
  attempt: 1,
  projectId: 'p1',
  localPath: '/repo',
  botName: 'coder',
  command: 'fix',
  prompt: 'look at the screenshot',
  systemPrompt: 'You are a coder.',
  model: 'claude-sonnet-4-5',
  allowedTools: ['Read'],
  priority: 'normal' as const,
};
const bytes = (n: number) => Buffer.alloc(n, 7).toString('base64');

describe('TASK_SUBMIT attachments', () => {
  it('the largest allowed attachments, prompt and system prompt still fit one frame', () => {
    const submit = createMessage('TASK_SUBMIT', {
      ...base,
      // Quotes and newlines are escaped in JSON: the worst case for the frame size.
      prompt: '"\n'.repeat(50_000),
      systemPrompt: 's'.repeat(50_000),
      attachments: [
        {
          name: 'screen.png',
          kind: 'image',
          mediaType: 'image/png',
          data: bytes(ATTACHMENT_LIMITS.totalBytes),
        },
      ],
    });
    const frame = serialize(submit);
    expect(Buffer.byteLength(frame)).toBeLessThan(MAX_FRAME_BYTES);
    expect(parse(frame)).toMatchObject({ ok: true });
  });

  it('refuses a file or a total over the limits, and content that is not base64', () => {
    const one = (n: number) => ({
      name: 'a.txt',
      kind: 'text' as const,
      mediaType: 'text/plain',
      data: bytes(n),
    });
    expect(
      TaskSubmit.safeParse({ ...base, attachments: [one(ATTACHMENT_LIMITS.fileBytes + 3)] }).success,
    ).toBe(false);
    const half = Math.floor(ATTACHMENT_LIMITS.totalBytes / 2) + 3;
    expect(TaskSubmit.safeParse({ ...base, attachments: [one(half), one(half)] }).success).toBe(false);
    expect(TaskSubmit.safeParse({ ...base, attachments: [{ ...one(1), data: 'not base64!' }] }).success).toBe(
      false,
    );
    expect(TaskSubmit.safeParse({ ...base, attachments: [one(10)] }).success).toBe(true);
    expect(base64Bytes(bytes(10))).toBe(10);
    expect(base64Bytes(bytes(11))).toBe(11);
    expect(base64Bytes(bytes(12))).toBe(12);
  });
});
