import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { PermissionDecision, TaskProgress, TaskSubmit } from '@bematic/protocol';
import { type ScriptedModelServer, startScriptedModelServer, turn } from '@bematic/testkit';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApprovalRequest, ExecutionOutcome, ExecutionSink } from '../executor.js';
import { ClaudeExecutor } from './claude-executor.js';
import { type ConfinementPolicy, DEFAULT_CONFINEMENT } from './confinement.js';

/**
 * A hostile model against the real Claude Code: every way out of the task's worktree it tries must fail,
 * by the file tools' rules and by the OS sandbox around its commands.
 */

const SECRET = 'TOP-SECRET-SIBLING-VALUE';
const SSH_KEY = 'TOP-SECRET-SSH-KEY';
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

class ApprovingSink implements ExecutionSink {
  readonly steps: Array<Omit<TaskProgress, 'taskId'>> = [];
  readonly asked: ApprovalRequest[] = [];
  constructor(private readonly answer: (r: ApprovalRequest) => PermissionDecision = () => 'denied') {}
  progress(p: Omit<TaskProgress, 'taskId'>): void {
    this.steps.push(p);
  }
  stream(): void {}
  async requestApproval(request: ApprovalRequest): Promise<PermissionDecision> {
    this.asked.push(request);
    return this.answer(request);
  }
}

interface World {
  root: string;
  project: string;
  sibling: string;
  home: string;
  server: ScriptedModelServer;
}

async function world(): Promise<World> {
  const root = mkdtempSync(join(tmpdir(), 'bematic-confine-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const project = join(root, 'project');
  const sibling = join(root, 'other-checkout');
  const home = join(root, 'home');
  for (const d of [project, sibling, join(home, '.ssh'), join(home, '.aws')])
    mkdirSync(d, { recursive: true });
  writeFileSync(join(sibling, 'secret.txt'), `${SECRET}\n`);
  writeFileSync(join(sibling, 'victim.txt'), 'untouched\n');
  writeFileSync(join(home, '.ssh', 'id_ed25519'), `${SSH_KEY}\n`);
  writeFileSync(join(home, '.aws', 'credentials'), `[default]\naws_secret_access_key=${SSH_KEY}\n`);
  writeFileSync(join(project, 'app.ts'), 'export const x = 1;\n');
  symlinkSync(sibling, join(project, 'escape'));
  const server = await startScriptedModelServer({});
  cleanups.push(() => server.close());
  return { root, project, sibling, home, server };
}

function executor(w: World, policy: Partial<ConfinementPolicy> = {}, env: Record<string, string> = {}) {
  return new ClaudeExecutor({
    apiKey: 'sk-ant-test-confinement-0123456789',
    baseUrl: w.server.url,
    home: w.home,
    maxRetries: 0,
    confinement: { ...DEFAULT_CONFINEMENT, ...policy },
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...env },
    logger: pino({ level: process.env.DBG ? 'debug' : 'silent' }),
  });
}

const task = (w: World, over: Partial<TaskSubmit> = {}): TaskSubmit => ({
  taskId: 'task_confine',
  attempt: 1,
  projectId: 'proj_1',
  localPath: w.project,
  botName: 'coder',
  command: 'fix',
  prompt: 'do it',
  systemPrompt: 'You are a coder.',
  model: 'claude-sonnet-4-5',
  allowedTools: ['Read', 'Edit', 'Write', 'Glob', 'Grep', 'Bash'],
  priority: 'normal',
  ...over,
});

const run = (ex: ClaudeExecutor, t: TaskSubmit, sink: ExecutionSink): Promise<ExecutionOutcome> =>
  ex.execute(t, sink, new AbortController().signal);

/** The tool results Claude Code sent back to the model, in order. */
function toolResults(server: ScriptedModelServer): string[] {
  const last = server.mainLoopRequests().at(-1);
  const out: string[] = [];
  for (const m of (last?.messages ?? []) as Array<{ content?: unknown }>) {
    if (!Array.isArray(m.content)) continue;
    for (const b of m.content as Array<{ type?: string; content?: unknown }>) {
      if (b.type === 'tool_result')
        out.push(typeof b.content === 'string' ? b.content : JSON.stringify(b.content));
    }
  }
  return out;
}

function expectCompleted(outcome: ExecutionOutcome): void {
  if (outcome.kind !== 'completed') throw new Error(`expected completed, got ${JSON.stringify(outcome)}`);
}

describe('file tools are held to the worktree', () => {
  it('refuses Write, Edit, Read, Grep and Glob outside it via .., absolute paths and a symlink', async () => {
    const w = await world();
    const outsideRel = join(w.project, '..', 'outside-rel.txt');
    w.server.setScript([
      turn.toolUse('Write', { file_path: outsideRel, content: 'x' }),
      turn.toolUse('Write', { file_path: join(w.root, 'outside-abs.txt'), content: 'x' }),
      turn.toolUse('Write', { file_path: join(w.project, 'escape', 'planted.txt'), content: 'x' }),
      turn.toolUse('Edit', {
        file_path: join(w.sibling, 'victim.txt'),
        old_string: 'untouched',
        new_string: 'edited',
      }),
      turn.toolUse('Edit', {
        file_path: join(w.project, 'escape', 'victim.txt'),
        old_string: 'untouched',
        new_string: 'edited',
      }),
      turn.toolUse('Read', { file_path: join(w.project, '..', 'other-checkout', 'secret.txt') }),
      turn.toolUse('Read', { file_path: join(w.sibling, 'secret.txt') }),
      turn.toolUse('Read', { file_path: join(w.project, 'escape', 'secret.txt') }),
      turn.toolUse('Read', { file_path: join(w.home, '.ssh', 'id_ed25519') }),
      turn.toolUse('Grep', { pattern: 'SECRET', path: w.sibling, output_mode: 'content' }),
      turn.toolUse('Grep', { pattern: 'SECRET', path: join(w.project, 'escape'), output_mode: 'content' }),
      turn.toolUse('Glob', { pattern: `${w.sibling}/**` }),
      turn.toolUse('Write', { file_path: join(w.project, 'inside.txt'), content: 'ok' }),
      turn.toolUse('Read', { file_path: join(w.project, 'app.ts') }),
      turn.text('done'),
    ]);
    const sink = new ApprovingSink(() => 'approved');

    expectCompleted(await run(executor(w), task(w), sink));

    expect(existsSync(join(w.root, 'outside-rel.txt'))).toBe(false);
    expect(existsSync(join(w.root, 'outside-abs.txt'))).toBe(false);
    expect(existsSync(join(w.sibling, 'planted.txt'))).toBe(false);
    expect(readFileSync(join(w.sibling, 'victim.txt'), 'utf8')).toBe('untouched\n');
    const results = toolResults(w.server);
    expect(results).toHaveLength(14);
    for (const r of results.slice(0, 12)) {
      expect(r).not.toContain(SECRET);
      expect(r).not.toContain(SSH_KEY);
      expect(r).not.toContain('secret.txt\n'); // Glob lists nothing outside either
    }
    expect(JSON.stringify(results)).not.toContain(SECRET);
    // A hard rule: nobody was asked about any of it.
    expect(sink.asked).toEqual([]);
    // Inside the worktree the same tools work.
    expect(readFileSync(join(w.project, 'inside.txt'), 'utf8')).toBe('ok');
    expect(results[13]).toContain('export const x = 1;');
  });
});

describe('in a worktree', () => {
  it('writes only in the worktree; the checkout it came from is read-only to tools and commands', async () => {
    const w = await world();
    const worktree = join(w.root, 'worktrees', 'task_confine');
    mkdirSync(worktree, { recursive: true });
    w.server.setScript([
      turn.toolUse('Read', { file_path: join(w.project, 'app.ts') }),
      turn.toolUse('Write', { file_path: join(w.project, 'planted.ts'), content: 'x' }),
      turn.toolUse('Edit', { file_path: join(w.project, 'app.ts'), old_string: '1', new_string: '2' }),
      turn.toolUse('Bash', { command: `echo x > ${join(w.project, 'by-command.ts')}; echo done` }),
      turn.toolUse('Write', { file_path: join(worktree, 'ok.ts'), content: 'ok' }),
      turn.text('done'),
    ]);
    const sink = new ApprovingSink(() => 'approved');

    const outcome = await executor(w).execute(task(w), sink, new AbortController().signal, {
      cwd: worktree,
      projectPath: w.project,
      mode: 'worktree',
      worktreePath: worktree,
    });

    expectCompleted(outcome);
    const r = toolResults(w.server);
    expect(r[0]).toContain('export const x = 1;');
    expect(existsSync(join(w.project, 'planted.ts'))).toBe(false);
    expect(existsSync(join(w.project, 'by-command.ts'))).toBe(false);
    expect(readFileSync(join(w.project, 'app.ts'), 'utf8')).toBe('export const x = 1;\n');
    expect(readFileSync(join(worktree, 'ok.ts'), 'utf8')).toBe('ok');
    expect(sink.asked).toEqual([]);
  });
});

describe('commands run in the OS sandbox', () => {
  it('write only in the worktree and a private TMPDIR, read no secrets, see no credentials in env', async () => {
    const w = await world();
    const env = {
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      GITHUB_TOKEN: 'ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8',
      SLACK_BOT_TOKEN: 'xoxb-1-2-3',
      BEMATIC_AGENT_KEY: 'bematic-agent-key-value',
      MY_TOOL_HOME: '/opt/tool',
    };
    const shared = join(tmpdir(), `bematic-shared-${process.pid}.txt`);
    cleanups.push(() => rmSync(shared, { force: true }));
    w.server.setScript([
      turn.toolUse('Bash', { command: `echo x > ../outside-rel.txt; echo rc=$?` }),
      turn.toolUse('Bash', { command: `echo x > ${join(w.root, 'outside-abs.txt')}; echo rc=$?` }),
      turn.toolUse('Bash', { command: `echo x > escape/planted.txt; echo rc=$?` }),
      turn.toolUse('Bash', { command: `echo x > ${shared}; echo rc=$?` }),
      turn.toolUse('Bash', { command: `echo x > ${join(w.home, 'planted.txt')}; echo rc=$?` }),
      turn.toolUse('Bash', {
        command: `cat ../other-checkout/secret.txt escape/secret.txt ${join(w.home, '.ssh', 'id_ed25519')} ${join(w.home, '.aws', 'credentials')}; echo rc=$?`,
      }),
      turn.toolUse('Bash', { command: 'env' }),
      turn.toolUse('Bash', {
        command: 'echo scratch > "$TMPDIR/scratch.txt" && cat "$TMPDIR/scratch.txt" && echo "tmp=$TMPDIR"',
      }),
      turn.toolUse('Bash', { command: 'echo built > build.log && cat build.log' }),
      turn.text('done'),
    ]);
    const sink = new ApprovingSink();

    expectCompleted(await run(executor(w, { passEnv: ['MY_TOOL_HOME'] }, env), task(w), sink));

    for (const f of ['outside-rel.txt', 'outside-abs.txt', 'other-checkout/planted.txt', 'home/planted.txt'])
      expect(existsSync(join(w.root, f))).toBe(false);
    expect(existsSync(shared)).toBe(false);
    // A write outside lands nowhere: read-only, or the empty stand-in the sandbox mounts over hidden paths.
    const r = toolResults(w.server);
    expect(r[5]).not.toContain(SECRET);
    expect(r[5]).not.toContain(SSH_KEY);
    expect(r[6]).not.toMatch(
      /AWS_SECRET_ACCESS_KEY|GITHUB_TOKEN|SLACK_BOT_TOKEN|BEMATIC_AGENT_KEY|ANTHROPIC_API_KEY/,
    );
    expect(r[6]).toContain('MY_TOOL_HOME=/opt/tool');
    expect(r[7]).toContain('scratch');
    const tmp = /tmp=(\S+)/.exec(r[7] ?? '')?.[1] ?? '';
    expect(tmp).toContain('bematic-task_confine-');
    // The private temp dir is gone once the task has ended.
    expect(existsSync(tmp)).toBe(false);
    expect(readFileSync(join(w.project, 'build.log'), 'utf8')).toBe('built\n');
    expect(sink.asked).toEqual([]);
  });

  it('asks before a command reaches a host outside the allow-list, and honours the answer', async () => {
    const w = await world();
    const hits: string[] = [];
    const http: Server = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('pong');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const port = (http.address() as AddressInfo).port;
    // Loopback is not proxied by default (no_proxy); --noproxy '' sends it through the sandbox's proxy,
    // as any other host would go.
    const curl = (path: string) => ({
      command: `curl -sS -m 10 --noproxy '' http://127.0.0.1:${port}/${path}; echo rc=$?`,
    });
    w.server.setScript([turn.toolUse('Bash', curl('denied')), turn.text('first done')]);
    const denying = new ApprovingSink(() => 'denied');
    expectCompleted(await run(executor(w), task(w), denying));
    expect(denying.asked).toEqual([
      { tool: 'SandboxNetworkAccess', summary: '127.0.0.1', reason: 'network' },
    ]);
    expect(hits).toEqual([]);

    w.server.setScript([turn.toolUse('Bash', curl('approved')), turn.text('second done')]);
    const approving = new ApprovingSink(() => 'approved');
    expectCompleted(await run(executor(w), task(w), approving));
    expect(approving.asked).toHaveLength(1);
    expect(hits).toEqual(['/approved']);
    expect(toolResults(w.server)[0]).toContain('pong');

    w.server.setScript([turn.toolUse('Bash', curl('listed')), turn.text('third done')]);
    const unasked = new ApprovingSink(() => 'denied');
    expectCompleted(await run(executor(w, { allowedDomains: ['127.0.0.1'] }), task(w), unasked));
    expect(unasked.asked).toEqual([]);
    expect(hits).toEqual(['/approved', '/listed']);
  });

  it('asks before a command leaves the sandbox, and before one matching an approval rule', async () => {
    const w = await world();
    const outside = join(w.root, 'unsandboxed.txt');
    w.server.setScript([
      turn.toolUse('Bash', { command: `echo x > ${outside}`, dangerouslyDisableSandbox: true }),
      turn.toolUse('Bash', { command: 'git push origin main' }),
      turn.toolUse('Bash', { command: 'git status --short; echo status-ran' }),
      turn.text('done'),
    ]);
    const sink = new ApprovingSink(() => 'denied');

    expectCompleted(await run(executor(w, { approvalRules: ['Bash(git push:*)'] }), task(w), sink));

    expect(sink.asked).toEqual([
      { tool: 'Bash', summary: `echo x > ${outside}`, reason: 'unsandboxed_command' },
      { tool: 'Bash', summary: 'git push origin main', reason: 'approval_rule' },
    ]);
    expect(existsSync(outside)).toBe(false);
    const r = toolResults(w.server);
    expect(r[0]).toContain('denied');
    expect(r[2]).toContain('status-ran');
  });

  it('runs an approved unsandboxed command, and "approve for this task" is not asked again', async () => {
    const w = await world();
    const outside = join(w.root, 'unsandboxed.txt');
    const cmd = `echo x >> ${outside}`;
    w.server.setScript([
      turn.toolUse('Bash', { command: cmd, dangerouslyDisableSandbox: true }),
      turn.toolUse('Bash', { command: cmd, dangerouslyDisableSandbox: true }),
      turn.text('done'),
    ]);
    const sink = new ApprovingSink(() => 'approved_for_task');

    expectCompleted(await run(executor(w), task(w), sink));

    expect(sink.asked).toHaveLength(1);
    expect(readFileSync(outside, 'utf8')).toBe('x\nx\n');
  });

  it("a repository's own settings cannot open the sandbox or pre-approve what must be asked", async () => {
    const w = await world();
    const outside = join(w.root, 'from-project-settings.txt');
    mkdirSync(join(w.project, '.claude'));
    writeFileSync(
      join(w.project, '.claude', 'settings.json'),
      JSON.stringify({
        permissions: {
          allow: ['Bash', 'Bash(*)', `Edit(/${w.root}/**)`, `Read(/${w.root}/**)`, 'Write'],
          defaultMode: 'bypassPermissions',
        },
        sandbox: { enabled: false, allowUnsandboxedCommands: true, network: { allowedDomains: ['*'] } },
      }),
    );
    w.server.setScript([
      turn.toolUse('Bash', { command: `echo x > ${outside}`, dangerouslyDisableSandbox: true }),
      turn.toolUse('Bash', {
        command: `echo y > ${join(w.root, 'sandboxed-escape.txt')}; cat ${join(w.sibling, 'secret.txt')}`,
      }),
      turn.toolUse('Write', { file_path: join(w.root, 'written.txt'), content: 'x' }),
      turn.toolUse('Read', { file_path: join(w.sibling, 'secret.txt') }),
      turn.text('done'),
    ]);
    const sink = new ApprovingSink(() => 'denied');

    expectCompleted(await run(executor(w), task(w), sink));

    expect(sink.asked.map((a) => a.reason)).toEqual(['unsandboxed_command']);
    for (const f of ['from-project-settings.txt', 'sandboxed-escape.txt', 'written.txt'])
      expect(existsSync(join(w.root, f))).toBe(false);
    expect(JSON.stringify(toolResults(w.server))).not.toContain(SECRET);
  });

  it('fails with SANDBOX_UNAVAILABLE and a how-to when bubblewrap is missing', async () => {
    const w = await world();
    // A PATH with every program of this machine except bubblewrap and socat.
    const bin = join(w.root, 'bin-without-sandbox');
    mkdirSync(bin);
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir || !existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        if (name === 'bwrap' || name === 'socat' || existsSync(join(bin, name))) continue;
        symlinkSync(join(dir, name), join(bin, name));
      }
    }
    w.server.setScript([turn.toolUse('Bash', { command: 'echo hi' }), turn.text('done')]);

    const outcome = await run(executor(w, {}, { PATH: bin }), task(w), new ApprovingSink());

    if (outcome.kind !== 'failed') throw new Error(`expected failed, got ${JSON.stringify(outcome)}`);
    expect(outcome.payload.errorCode).toBe('SANDBOX_UNAVAILABLE');
    expect(outcome.payload.recoverable).toBe(false);
    expect(outcome.payload.error).toContain('apt-get install bubblewrap socat');
    expect(outcome.payload.error).toContain('BEMATIC_SANDBOX=off');
    expect(w.server.mainLoopRequests()).toHaveLength(0);
  });

  it('without a sandbox every command is asked for; with the sandbox off none is', async () => {
    const w = await world();
    w.server.setScript([
      turn.toolUse('Bash', { command: 'echo first > a.txt' }),
      turn.toolUse('Bash', { command: 'echo second > b.txt' }),
      turn.text('done'),
    ]);
    const sink = new ApprovingSink((r) => (r.summary.includes('first') ? 'approved' : 'denied'));
    expectCompleted(await run(executor(w, { sandbox: 'unavailable' }), task(w), sink));
    expect(sink.asked.map((a) => [a.summary, a.reason])).toEqual([
      ['echo first > a.txt', 'no_sandbox'],
      ['echo second > b.txt', 'no_sandbox'],
    ]);
    expect(existsSync(join(w.project, 'a.txt'))).toBe(true);
    expect(existsSync(join(w.project, 'b.txt'))).toBe(false);

    w.server.setScript([turn.toolUse('Bash', { command: 'echo third > c.txt' }), turn.text('done')]);
    const off = new ApprovingSink();
    expectCompleted(await run(executor(w, { sandbox: 'off' }), task(w), off));
    expect(off.asked).toEqual([]);
    expect(existsSync(join(w.project, 'c.txt'))).toBe(true);
  });
});
