import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ScriptedModelServer, startScriptedModelServer, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));

/**
 * The released shape: `bematic cloud` and `bematic agent` as two separate OS
 * processes, set up with `bematic keys` and `bematic projects`, talking over a
 * real WebSocket; a task typed into the console runs real Claude Code.
 */
describe('bematic cloud + bematic agent as separate processes', () => {
  let dir: string;
  let model: ScriptedModelServer;
  const children: ChildProcess[] = [];
  let env: NodeJS.ProcessEnv;

  const bematic = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, cwd: dir });
  const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, cwd: dir });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const waitFor = (pattern: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) resolve(m);
        };
        child.stdout?.on('data', check);
        child.stderr?.on('data', check);
        child.once('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}:\n${out}`)));
        check();
      });
    return { child, waitFor, output: () => out };
  };

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error('packages/cli/dist is missing: run `npm run build` first');
    dir = await mkdtemp(path.join(tmpdir(), 'bematic-cli-'));
    model = await startScriptedModelServer();
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      DATABASE_URL: `sqlite:${path.join(dir, 'bematic.db')}`,
      BEMATIC_LOG_LEVEL: 'warn',
      BEMATIC_LOG_FORMAT: 'json',
    };
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)),
    );
    await model?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keys, projects and migrate work against the configured database', async () => {
    const migrate = await bematic('migrate');
    expect(migrate.stdout).toMatch(/001/);
    const created = await bematic('keys', 'create', 'build-box', '--label', 'ci');
    const key = created.stdout.match(/bmk_\S+/)?.[0];
    expect(key).toBeDefined();
    env.TEST_AGENT_KEY = key;
    const listed = await bematic('keys', 'list');
    expect(listed.stdout).toContain('build-box');
    expect(listed.stdout).not.toContain(key!);
    const project = path.join(dir, 'webapp');
    await run('mkdir', ['-p', project]);
    const added = await bematic('projects', 'add', 'console:local', 'build-box', project);
    expect(added.stdout).toContain('build-box');
    expect((await bematic('projects', 'list')).stdout).toContain(project);
  });

  it('a task typed into the console runs on the separate agent process and completes', async () => {
    const cloud = start(['cloud'], { PORT: '0' });
    const [, url] = await cloud.waitFor(/Bematic cloud: (http:\/\/\S+)/);
    // Sign in the way a person does: the one-time link from the banner sets the session cookie.
    const [, login] = await cloud.waitFor(/Sign in: (http:\/\/\S+)/);
    const signedIn = await fetch(login!, { redirect: 'manual' });
    expect(signedIn.status).toBe(303);
    const cookie = signedIn.headers.get('set-cookie')?.split(';')[0] ?? '';
    expect(cookie).toMatch(/^bematic_session=/);
    expect((await fetch(login!, { redirect: 'manual' })).headers.get('location')).toMatch(/login=refused/);
    expect((await fetch(`${url}/api/tasks`)).status).toBe(401);
    const headers = { cookie };
    const agent = start(['agent'], {
      BEMATIC_CLOUD_URL: url,
      BEMATIC_AGENT_ID: 'build-box',
      BEMATIC_AGENT_KEY: env.TEST_AGENT_KEY,
      BEMATIC_AGENT_ROOTS: dir,
      ANTHROPIC_API_KEY: 'sk-ant-test',
      ANTHROPIC_BASE_URL: model.url,
      // The machine's load is not what this test is about: a busy CI host must not refuse the task.
      BEMATIC_CPU_THRESHOLD: 'off',
      BEMATIC_MEMORY_THRESHOLD: 'off',
      BEMATIC_LOG_LEVEL: 'info',
    });
    await agent.waitFor(/connected to the cloud/);

    model.setScript([
      turn.toolUse('Write', { file_path: 'hello.js', content: 'export const hello = () => "hi";\n' }),
      turn.text('Added hello().'),
    ]);
    const events = await subscribe(`${url}/api/events`, headers);
    const finished = events.next(/"event":"task\.(completed|failed|cancelled)"/);
    const posted = await fetch(`${url}/api/console/messages`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'code add a hello function in hello.js' }),
    });
    expect(posted.status).toBe(202);

    const { task: summary } = JSON.parse(await finished) as { task: { id: string } };
    const { task } = (await (await fetch(`${url}/api/tasks/${summary.id}`, { headers })).json()) as {
      task: { status: string; filesChanged: string[] };
    };
    expect(task).toMatchObject({ status: 'completed', filesChanged: ['hello.js'] });
    expect(await readFile(path.join(dir, 'webapp', 'hello.js'), 'utf8')).toContain('hello');
    const agents = (await (await fetch(`${url}/api/agents`, { headers })).json()) as {
      agents: Array<{ agentId: string; online: boolean }>;
    };
    expect(agents.agents).toContainEqual(expect.objectContaining({ agentId: 'build-box', online: true }));
  });

  it('a bad setting stops the process with a message naming the variable', async () => {
    const bad = await run(process.execPath, [CLI, 'cloud'], {
      env: { ...env, PORT: 'eighty' },
      cwd: dir,
    }).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toMatch(/PORT/);
  });
});

/** Opens a Server-Sent Events stream; `next` resolves with the data of the first event matching `pattern`. */
async function subscribe(
  url: string,
  headers: Record<string, string>,
): Promise<{ next(pattern: RegExp): Promise<string> }> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal, headers });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  return {
    async next(pattern: RegExp) {
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('event stream ended');
        buffer += value;
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        const hit = lines.find((l) => l.startsWith('data:') && pattern.test(l));
        if (hit) {
          controller.abort();
          return hit.slice('data:'.length).trim();
        }
      }
    },
  };
}
