import { describe, expect, it } from 'vitest';
import { downloadSlackFiles } from './slack-files.js';
import { formatThreadContext, THREAD_CONTEXT_LIMITS } from './thread-context.js';

describe('thread context', () => {
  it('keeps the root and the newest messages within the bound, and says how many were left out', () => {
    const messages = Array.from({ length: 40 }, (_, i) => ({
      author: `@u${i}`,
      text: `${i} ${'x'.repeat(1500)}`,
    }));
    const text = formatThreadContext(messages, 0);
    expect(text.length).toBeLessThan(THREAD_CONTEXT_LIMITS.chars + 500);
    expect(text).toContain('@u0: 0 ');
    expect(text).toContain('@u39: 39 ');
    expect(text).not.toContain('@u1: 1 ');
    const left = /\((\d+) earlier messages left out to keep this short\)/.exec(text);
    expect(Number(left?.[1])).toBe(40 - 1 - (text.match(/^@u\d+:/gm)?.length ?? 0) + 1);
    expect(text.indexOf('left out')).toBeLessThan(text.indexOf('@u39'));
  });

  it('cuts one very long message and keeps short threads whole', () => {
    const text = formatThreadContext(
      [
        { author: '@ada', text: 'y'.repeat(10_000) },
        { author: '@bo', text: 'ok' },
      ],
      0,
    );
    expect(text).toContain('… (message cut)');
    expect(text).toContain('@bo: ok');
    expect(text).not.toContain('left out');
  });
});

describe('downloadSlackFiles', () => {
  const serve = (body: Buffer, seen: string[]) =>
    (async (_url: string | URL | Request, init?: RequestInit) => {
      seen.push(String(new Headers(init?.headers).get('authorization')));
      return new Response(new Uint8Array(body), { status: 200 });
    }) as typeof fetch;

  it('sends the bot token, skips binaries that are not images, and names why', async () => {
    const seen: string[] = [];
    const out = await downloadSlackFiles(
      [{ id: 'F1', name: 'app.bin', mimetype: 'application/octet-stream', url_private: 'https://files/x' }],
      'xoxb-1',
      serve(Buffer.from([0, 1, 2, 3]), seen),
    );
    expect(seen).toEqual(['Bearer xoxb-1']);
    expect(out.attachments).toEqual([]);
    expect(out.skipped[0]).toMatch(/app\.bin: application\/octet-stream cannot be given to Claude/);
  });

  it('takes UTF-8 as text whatever its type says', async () => {
    const out = await downloadSlackFiles(
      [{ id: 'F2', name: 'notes.md', mimetype: 'application/octet-stream', url_private: 'https://files/y' }],
      'xoxb-1',
      serve(Buffer.from('# héllo\n'), []),
    );
    expect(out.attachments).toEqual([
      {
        name: 'notes.md',
        kind: 'text',
        mediaType: 'text/plain',
        data: Buffer.from('# héllo\n').toString('base64'),
      },
    ]);
  });
});
