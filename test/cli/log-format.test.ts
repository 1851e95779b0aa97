import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));

/** A port nothing listens on: the agent keeps trying and logs each failure. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The first log line `bematic agent` writes with BEMATIC_LOG_FORMAT set (stdout is a pipe, not a terminal). */
async function firstLogLine(
  format: string,
  dir: string,
  port: number,
  match: (line: string) => boolean = (l) => /agent-log/.test(l) && l.startsWith('{'),
): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'agent'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      BEMATIC_CLOUD_URL: `ws://127.0.0.1:${port}`,
      BEMATIC_AGENT_ID: 'agent-log',
      BEMATIC_AGENT_KEY: 'bm_test_key',
      BEMATIC_AGENT_ROOTS: dir,
      BEMATIC_SANDBOX: 'off',
      BEMATIC_LOG_FORMAT: format,
    },
  });
  try {
    return await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find(match);
        if (line) resolve(line);
      });
      child.once('exit', (code) => reject(new Error(`agent exited (${code}) before logging: ${out}`)));
    });
  } finally {
    child.kill('SIGKILL');
  }
}

describe('BEMATIC_LOG_FORMAT', () => {
  let dir: string;
  let port: number;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bematic-logfmt-'));
    port = await closedPort();
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('json: one JSON object per line', async () => {
    const line = await firstLogLine('json', dir, port);
    expect(JSON.parse(line)).toMatchObject({ agentId: 'agent-log', level: expect.any(Number) });
  });

  it('pretty: human-readable even when stdout is not a terminal', async () => {
    const line = await firstLogLine('pretty', dir, port, (l) => /\] (INFO|WARN|ERROR)/.test(l));
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d(\.\d+)?\] (INFO|WARN|ERROR)/);
    expect(line).not.toContain('{"level"');
  });

  it('auto: JSON when stdout is not a terminal', async () => {
    const line = await firstLogLine('auto', dir, port);
    expect(JSON.parse(line)).toMatchObject({ agentId: 'agent-log' });
  });
});
