import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));
const MANIFEST = fileURLToPath(new URL('../../slack/manifest.json', import.meta.url));

/** `bematic slack manifest`, as a person runs it before creating the app. */
describe('bematic slack manifest', () => {
  it('prints the repository manifest (Socket Mode) without a URL', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'slack', 'manifest']);
    expect(JSON.parse(stdout)).toEqual(JSON.parse(await readFile(MANIFEST, 'utf8')));
  });

  it('fills in the request URL for HTTP mode, and refuses a URL Slack cannot post to', async () => {
    const { stdout } = await run(process.execPath, [
      CLI,
      'slack',
      'manifest',
      '--url',
      'https://bematic.example.com',
    ]);
    const manifest = JSON.parse(stdout);
    expect(manifest.settings.socket_mode_enabled).toBe(false);
    expect(manifest.settings.event_subscriptions.request_url).toBe(
      'https://bematic.example.com/slack/events',
    );
    expect(manifest.features.slash_commands[0].url).toBe('https://bematic.example.com/slack/events');
    await expect(run(process.execPath, [CLI, 'slack', 'manifest', '--url', 'ftp://x'])).rejects.toMatchObject(
      {
        code: 2,
        stderr: expect.stringContaining('must be http(s)'),
      },
    );
  });
});
