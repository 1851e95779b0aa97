import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskProgress, TaskSubmit } from '@bematic/protocol';
import { type ModelScript, type ScriptedModelServer, startScriptedModelServer, turn } from '@bematic/testkit';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessLedger } from '../../process/process-ledger.js';
import { type ProcessRun, RUN_TAG_VAR, runMembers } from '../../process/process-tree.js';
import type { ExecutionOutcome, ExecutionSink } from '../executor.js';
import { ClaudeExecutor, type ClaudeExecutorOptions } from './claude-executor.js';
import { DEFAULT_CONFINEMENT } from './confinement.js';

const API_KEY = 'sk-ant-test-secret-0123456789';
const dirs: string[] = [];
let server: ScriptedModelServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

class RecordingSink implements ExecutionSink {
  readonly steps: Array<Omit<TaskProgress, 'taskId'>> = [];
  readonly chunks: string[] = [];
  progress(p: Omit<TaskProgress, 'taskId'>): void {
    this.steps.push(p);
  }
  stream(text: string): void {
    this.chunks.push(text);
  }
  messages(kind: TaskProgress['kind']): string[] {
    return this.steps.filter((s) => s.kind === kind).map((s) => s.message);
  }
}

function makeTask(localPath: string, over: Partial<TaskSubmit> = {}): TaskSubmit {
  return {
    taskId: 'task_1',
    attempt: 1,
    projectId: 'proj_1',
    localPath,
    botName: 'coder',
    command: 'fix',
    prompt: 'fix the login bug in auth.ts',
    systemPrompt: 'You are CoderBot, a careful engineer.',
    model: 'claude-sonnet-4-5',
    allowedTools: ['Read', 'Edit', 'Write', 'Glob', 'Grep', 'Bash'],
    priority: 'normal',
    ...over,
  };
}

async function setup(script: ModelScript, opts: ClaudeExecutorOptions = {}) {
  server = await startScriptedModelServer({ script });
  const project = tempDir('bematic-project-');
  const pids: number[] = [];
  const executor = new ClaudeExecutor({
    apiKey: API_KEY,
    baseUrl: server.url,
    home: tempDir('bematic-home-'),
    maxRetries: 0,
    onSpawn: (pid) => pids.push(pid),
    logger: pino({ level: process.env.DBG ? 'debug' : 'silent' }),
    ...opts,
  });
  return { server, project, executor, pids, sink: new RecordingSink() };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Says yes to every approval, so compound commands run. */
class ApprovingSink extends RecordingSink {
  async requestApproval(): Promise<'approved'> {
    return 'approved';
  }
}

/** Polls real process state (there is no event for "a grandchild started"), bounded. */
async function until(check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Alive and not a zombie waiting to be reaped by whoever inherited it. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

function pgidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** The run of the first Claude Code spawned: its group and the tag it carries. */
async function runOf(pids: number[]): Promise<ProcessRun> {
  await until(() => pids.length > 0);
  const pgid = pids[0]!;
  const env = readFileSync(`/proc/${pgid}/environ`, 'latin1').split('\0');
  const tag = env.find((e) => e.startsWith(`${RUN_TAG_VAR}=`))?.slice(RUN_TAG_VAR.length + 1);
  expect(tag).toBeDefined();
  return { pgid, tag: tag! };
}

/** Processes of the run that are neither Claude Code itself nor in its group (the commands it ran). */
function loopMembers(run: ProcessRun): number[] {
  return runMembers(run).filter((pid) => pid !== run.pgid && pgidOf(pid) !== run.pgid);
}

const unexpected = (want: string, got: ExecutionOutcome) =>
  new Error(`expected ${want}, got ${JSON.stringify(got)}`);

function completed(outcome: ExecutionOutcome) {
  if (outcome.kind !== 'completed') throw unexpected('completed', outcome);
  return outcome.payload;
}
function failed(outcome: ExecutionOutcome) {
  if (outcome.kind !== 'failed') throw unexpected('failed', outcome);
  return outcome.payload;
}
function cancelled(outcome: ExecutionOutcome) {
  if (outcome.kind !== 'cancelled') throw unexpected('cancelled', outcome);
  return outcome.payload;
}

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, stdio: 'pipe' });

describe('ClaudeExecutor on the real Claude Agent SDK', () => {
  it('writes and edits files on disk, streams text, reports steps, files, commands and usage', async () => {
    const usage = { input_tokens: 100, output_tokens: 20 };
    const ctx = await setup([]);
    const auth = join(ctx.project, 'src', 'auth.ts');
    mkdirSync(join(ctx.project, 'src'));
    writeFileSync(auth, 'export const login = () => false;\n');
    writeFileSync(join(ctx.project, 'notes.txt'), 'dirty before the task\n');
    git(ctx.project, 'init', '-q');
    git(ctx.project, 'add', 'src/auth.ts');
    git(ctx.project, '-c', 'user.email=t@e.st', '-c', 'user.name=t', 'commit', '-qm', 'init');
    ctx.server.setScript([
      turn.textThenTool('Let me look at auth.ts.', 'Read', { file_path: auth }, { usage }),
      turn.toolUse(
        'Edit',
        { file_path: auth, old_string: '() => false', new_string: '() => true' },
        { usage },
      ),
      turn.toolUse(
        'Write',
        { file_path: join(ctx.project, 'src', 'auth.test.ts'), content: 'test();\n' },
        { usage },
      ),
      turn.toolUse('Bash', { command: 'echo generated > build.log' }, { usage }),
      turn.text('Fixed the login bug.', { usage }),
    ]);

    const out = completed(
      await ctx.executor.execute(makeTask(ctx.project), ctx.sink, new AbortController().signal),
    );

    expect(readFileSync(auth, 'utf8')).toBe('export const login = () => true;\n');
    expect(readFileSync(join(ctx.project, 'src', 'auth.test.ts'), 'utf8')).toBe('test();\n');
    expect(existsSync(join(ctx.project, 'build.log'))).toBe(true);
    expect(out.result).toBe('Fixed the login bug.');
    // Tool results + git status; notes.txt was dirty before the task and is not blamed on it.
    expect(out.filesChanged).toEqual(['build.log', 'src/auth.test.ts', 'src/auth.ts']);
    expect(out.commandsRun).toEqual(['echo generated > build.log']);
    const calls = ctx.sink.steps.filter((s) => s.kind === 'tool' && s.result === undefined);
    expect(calls.map((s) => s.message)).toEqual([
      'Reading src/auth.ts',
      'Editing src/auth.ts',
      'Writing src/auth.test.ts',
      'Running echo generated > build.log',
    ]);
    expect(calls.map((s) => s.tool)).toEqual(['Read', 'Edit', 'Write', 'Bash']);
    // Each call carries what it was given (edits and writes as diff hunks) and is paired with its result.
    expect(calls.map((s) => s.input)).toEqual([
      JSON.stringify({ file_path: auth }, null, 2),
      '--- a/src/auth.ts\n+++ b/src/auth.ts\n@@\n-() => false\n+() => true',
      '--- /dev/null\n+++ b/src/auth.test.ts\n@@\n+test();',
      'echo generated > build.log',
    ]);
    const results = ctx.sink.steps.filter((s) => s.result !== undefined);
    expect(results.map((s) => s.toolUseId)).toEqual(calls.map((s) => s.toolUseId));
    expect(results.map((s) => s.message)).toEqual(calls.map((s) => s.message));
    expect(results[0]?.result).toContain('export const login = () => false;');
    expect(results.every((s) => s.isError === false)).toBe(true);
    expect(ctx.sink.chunks.join('')).toBe('Let me look at auth.ts.\n\nFixed the login bug.');
    expect(out.metrics).toMatchObject({ inputTokens: 500, outputTokens: 100, numTurns: 5, continuations: 0 });
    // Every step carries the running totals: each response once (Claude Code repeats its usage per content
    // block), the tool's result after its response's final usage. Four responses had come by the Bash result.
    expect(calls.map((s) => s.usage?.turns)).toEqual([1, 2, 3, 4]);
    expect(results.map((s) => s.usage?.inputTokens)).toEqual([100, 200, 300, 400]);
    expect(results.at(-1)?.usage).toEqual({ inputTokens: 400, outputTokens: 80, turns: 4 });
    expect(out.metrics.costUsd).toBeGreaterThan(0);
    expect(out.sessionId).toBe(ctx.server.mainLoopRequests()[0]?.headers['x-claude-code-session-id']);
  });

  it('offers a read-only bot exactly its tools, with its system prompt and model', async () => {
    const ctx = await setup([]);
    const target = join(ctx.project, 'pwned.txt');
    ctx.server.setScript([
      turn.toolUse('Write', { file_path: target, content: 'x' }),
      turn.text('I cannot write.'),
    ]);
    const task = makeTask(ctx.project, {
      allowedTools: ['Read', 'Glob', 'Grep'],
      systemPrompt: 'You are ReviewBot. Never change files.',
      model: 'claude-haiku-4-5',
    });

    completed(await ctx.executor.execute(task, ctx.sink, new AbortController().signal));

    const main = ctx.server.mainLoopRequests();
    expect(main.length).toBeGreaterThanOrEqual(2);
    for (const r of main) {
      expect([...r.tools].sort()).toEqual(['Glob', 'Grep', 'Read']);
      expect(r.model).toBe('claude-haiku-4-5');
      expect(r.systemBlocks).toContain('You are ReviewBot. Never change files.');
    }
    expect(existsSync(target)).toBe(false);
    expect(ctx.server.requests.every((r) => r.headers['x-api-key'] !== API_KEY)).toBe(true);
  });

  it('auto-continues on max turns in the same session and aggregates usage', async () => {
    const usage = { input_tokens: 100, output_tokens: 10 };
    const ctx = await setup(
      [
        turn.toolUse('Bash', { command: 'echo one' }, { usage }),
        turn.toolUse('Bash', { command: 'echo two' }, { usage }),
        turn.text('All steps finished.', { usage }),
      ],
      { maxTurns: 1 },
    );

    const out = completed(
      await ctx.executor.execute(
        makeTask(ctx.project, { maxContinuations: 3 }),
        ctx.sink,
        new AbortController().signal,
      ),
    );

    expect(out.result).toBe('All steps finished.');
    expect(out.warning).toBeUndefined();
    expect(ctx.sink.messages('continuation')).toEqual(['Auto-continuing (1/3)…', 'Auto-continuing (2/3)…']);
    const main = ctx.server.mainLoopRequests();
    expect(main.map((r) => r.turnIndex)).toEqual([0, 1, 2]);
    const sessions = new Set(main.map((r) => r.headers['x-claude-code-session-id']));
    expect(sessions).toEqual(new Set([out.sessionId]));
    // Each resumed request carries the earlier conversation.
    expect(main[1]?.messages.length).toBeGreaterThan(main[0]?.messages.length ?? 0);
    expect(JSON.stringify(main[2]?.messages)).toContain('echo one');
    expect(out.metrics).toMatchObject({ inputTokens: 300, outputTokens: 30, continuations: 2 });
    // The continuation notices carry the totals so far, with the cost the finished invocations reported.
    const notices = ctx.sink.steps.filter((s) => s.kind === 'continuation');
    expect(notices.map((s) => [s.usage?.inputTokens, s.usage?.outputTokens, s.usage?.turns])).toEqual([
      [100, 10, 1],
      [200, 20, 2],
    ]);
    expect(notices[0]?.usage?.costUsd).toBeGreaterThan(0);
    expect(notices[1]?.usage?.costUsd).toBeGreaterThan(notices[0]?.usage?.costUsd ?? 0);
    expect(out.commandsRun).toEqual(['echo one', 'echo two']);
  });

  it('completes with the partial result and a warning when continuations are exhausted', async () => {
    const ctx = await setup(
      [
        turn.textThenTool('Step one.', 'Bash', { command: 'echo one' }),
        turn.textThenTool('Step two.', 'Bash', { command: 'echo two' }),
        turn.text('never reached'),
      ],
      { maxTurns: 1 },
    );

    const out = completed(
      await ctx.executor.execute(
        makeTask(ctx.project, { maxContinuations: 1 }),
        ctx.sink,
        new AbortController().signal,
      ),
    );

    expect(out.warning).toMatch(/auto-continuation/i);
    expect(out.result).toBe('Step one.\n\nStep two.');
    expect(out.metrics.continuations).toBe(1);
    expect(ctx.sink.messages('continuation')).toEqual(['Auto-continuing (1/1)…']);
    expect(ctx.server.remainingTurns()).toBe(1);
  });

  it('resumes an earlier session for a thread reply', async () => {
    const ctx = await setup([turn.text('First answer.'), turn.text('Second answer.')]);
    const first = completed(
      await ctx.executor.execute(makeTask(ctx.project), ctx.sink, new AbortController().signal),
    );
    const second = completed(
      await ctx.executor.execute(
        makeTask(ctx.project, { taskId: 'task_2', prompt: 'and now?', resumeSessionId: first.sessionId }),
        new RecordingSink(),
        new AbortController().signal,
      ),
    );
    expect(second.result).toBe('Second answer.');
    expect(second.sessionId).toBe(first.sessionId);
    // Only this task's own model call is counted, not the resumed session's earlier one.
    expect(second.metrics).toMatchObject({ inputTokens: 10, outputTokens: 5, numTurns: 1 });
    expect(JSON.stringify(ctx.server.mainLoopRequests()[1]?.messages)).toContain('First answer.');
  });

  it('fails with BUDGET_EXCEEDED, not recoverable, with the usage breakdown', async () => {
    const ctx = await setup([
      turn.toolUse(
        'Bash',
        { command: 'echo hi' },
        { usage: { input_tokens: 2_000_000, output_tokens: 1000 } },
      ),
      turn.text('done'),
    ]);

    const out = failed(
      await ctx.executor.execute(
        makeTask(ctx.project, { maxBudgetUsd: 0.5 }),
        ctx.sink,
        new AbortController().signal,
      ),
    );

    expect(out.errorCode).toBe('BUDGET_EXCEEDED');
    expect(out.recoverable).toBe(false);
    expect(out.error).toMatch(/^Budget exceeded: /);
    expect(out.metrics?.inputTokens).toBe(2_000_000);
    expect(out.metrics?.costUsd).toBeGreaterThan(0.5);
  });

  it.each([
    [529, 'MODEL_OVERLOADED', true],
    [500, 'MODEL_SERVER_ERROR', true],
    [429, 'RATE_LIMITED', true],
    [401, 'AUTH_FAILED', false],
  ] as const)(
    'maps HTTP %i to %s (recoverable: %s) without leaking the key',
    async (status, code, recoverable) => {
      const ctx = await setup([turn.error(status, { message: `upstream said key ${API_KEY} is bad` })]);

      const outcome = await ctx.executor.execute(
        makeTask(ctx.project),
        ctx.sink,
        new AbortController().signal,
      );
      const out = failed(outcome);

      expect(out.errorCode).toBe(code);
      expect(out.recoverable).toBe(recoverable);
      expect(JSON.stringify(outcome)).not.toContain(API_KEY);
    },
  );

  it('cancels mid-run: resolves cancelled with the partial text and the Claude Code process is gone', async () => {
    const ctx = await setup([
      turn.textThenTool('Looking around first.', 'Bash', { command: 'echo hi' }),
      turn.text('never sent', { delayMs: 60_000 }),
    ]);
    const abort = new AbortController();
    const running = ctx.executor.execute(makeTask(ctx.project), ctx.sink, abort.signal);
    await ctx.server.waitForRequest((r) => r.turnIndex === 1);
    expect(ctx.pids).toHaveLength(1);
    const pid = ctx.pids[0] as number;
    expect(isAlive(pid)).toBe(true);

    abort.abort();
    const out = cancelled(await running);

    expect(out.partialResult).toBe('Looking around first.');
    expect(out.sessionId).toBeDefined();
    expect(isAlive(pid)).toBe(false);
  });

  it('cancel ends Claude Code and every command it started, though each runs in a session of its own', async () => {
    const loop = 'for i in $(seq 1 2000); do date +%s%N >> ticks.txt; sleep 0.05; done';
    const ctx = await setup([turn.toolUse('Bash', { command: loop }), turn.text('never reached')]);
    const ticks = join(ctx.project, 'ticks.txt');
    const abort = new AbortController();
    const running = ctx.executor.execute(makeTask(ctx.project), new ApprovingSink(), abort.signal);
    const run = await runOf(ctx.pids);
    await until(() => existsSync(ticks) && loopMembers(run).length > 0);
    // Claude Code really does put the command outside its own process group.
    const [commandPid] = loopMembers(run);
    expect(pgidOf(commandPid!)).not.toBe(run.pgid);

    abort.abort();
    cancelled(await running);

    expect(runMembers(run)).toEqual([]);
    expect(isRunning(commandPid!)).toBe(false);
  });

  it('ends a command Claude Code left running in the background once it has finished', async () => {
    const background = 'nohup sh -c "while :; do date >> bg.txt; sleep 0.1; done" > /dev/null 2>&1 &';
    // Unsandboxed: inside the sandbox a background command ends with its sandbox anyway.
    const ctx = await setup([turn.toolUse('Bash', { command: background }), turn.text('Started it.')], {
      confinement: { ...DEFAULT_CONFINEMENT, sandbox: 'off' },
    });
    const running = ctx.executor.execute(
      makeTask(ctx.project),
      new ApprovingSink(),
      new AbortController().signal,
    );
    const run = await runOf(ctx.pids);
    await ctx.server.waitForRequest((r) => r.turnIndex === 1);
    await until(() => existsSync(join(ctx.project, 'bg.txt')));
    const left = loopMembers(run);
    expect(left.length).toBeGreaterThan(0);

    expect(completed(await running).result).toBe('Started it.');

    expect(runMembers(run)).toEqual([]);
    for (const pid of left) expect(isRunning(pid)).toBe(false);
  });

  it('records each running Claude Code in the state dir and forgets it once it is gone', async () => {
    const stateDir = tempDir('bematic-state-');
    const ctx = await setup([turn.text('slow', { delayMs: 60_000 })], { stateDir });
    const abort = new AbortController();
    const running = ctx.executor.execute(makeTask(ctx.project), ctx.sink, abort.signal);
    const run = await runOf(ctx.pids);
    const ledger = new ProcessLedger(stateDir);
    expect(ledger.entries()).toEqual([
      expect.objectContaining({ pgid: run.pgid, tag: run.tag, taskId: 'task_1' }),
    ]);
    abort.abort();
    cancelled(await running);
    expect(ledger.entries()).toEqual([]);
  });

  it('refuses a project directory that does not exist', async () => {
    const ctx = await setup([]);
    const out = failed(
      await ctx.executor.execute(
        makeTask(join(ctx.project, 'missing')),
        ctx.sink,
        new AbortController().signal,
      ),
    );
    expect(out.errorCode).toBe('PATH_NOT_ALLOWED');
    expect(ctx.server.requests).toHaveLength(0);
  });
});
