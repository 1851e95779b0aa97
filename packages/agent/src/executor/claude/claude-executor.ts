import { stat } from 'node:fs/promises';
import {
  type Options,
  type PermissionMode,
  query,
  type SDKMessage,
  type SDKResultMessage,
  type SDKUserMessage,
  type SettingSource,
} from '@anthropic-ai/claude-agent-sdk';
import { redactSecrets, type TaskMetrics, type TaskSubmit } from '@bematic/protocol';
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import { ProcessLedger } from '../../process/process-ledger.js';
import type { ExecutionOutcome, ExecutionPlace, ExecutionSink, Executor } from '../executor.js';
import { ClaudeProcessHandle } from './claude-process.js';
import {
  allowListedEnv,
  type ConfinementPolicy,
  confineTask,
  DEFAULT_CONFINEMENT,
  type TaskConfinement,
} from './confinement.js';
import { mapModelError } from './error-mapping.js';
import { FileChangeTracker, gitChangesBetween, gitStatus } from './files-changed.js';
import { createPermissionGate } from './permissions.js';
import { promptWithAttachments } from './prompt-input.js';
import { sandboxUnavailable } from './sandbox.js';
import { bashCommand, describeToolUse, summarizeToolInput, toolResultText } from './tool-steps.js';
import { type InvocationUsage, LiveUsage, UsageAggregator, usageOfResult } from './usage.js';

export const MAX_CONTINUATIONS = 3;
export const DEFAULT_MAX_TURNS = 200;
export const DEFAULT_KILL_GRACE_MS = 3000;
const SESSION_TOTALS_LIMIT = 1000;
export const CONTINUE_PROMPT = 'Continue where you left off and finish the task.';

export interface ClaudeExecutorOptions {
  /** Default: process.env.ANTHROPIC_API_KEY. */
  apiKey?: string;
  /** Default: process.env.ANTHROPIC_BASE_URL (unset means Anthropic's API). */
  baseUrl?: string;
  /** Environment the Claude Code process starts from (default process.env); credentials of Bematic and Slack are removed. */
  env?: Record<string, string | undefined>;
  /** Sandbox, network allow-list, approval rules and environment pass-through (default: sandbox on). */
  confinement?: ConfinementPolicy;
  /** HOME (and Claude config dir) for the Claude Code process; default: inherited. */
  home?: string;
  /** Model turns per query() before auto-continuation kicks in (BEMATIC_MAX_TURNS). */
  maxTurns?: number;
  /** Default for tasks that do not set maxContinuations. */
  maxContinuations?: number;
  /** Retries Claude Code makes itself on 429/5xx/529 before reporting the error. */
  maxRetries?: number;
  /** How long a cancelled Claude Code (and its process group) may take to exit before SIGKILL. */
  killGraceMs?: number;
  /**
   * The agent's state directory: every running Claude Code process group is recorded there, so
   * `reapLeftovers` at the next start ends what a crashed run left. Without it only the watchdog does.
   */
  stateDir?: string;
  permissionMode?: PermissionMode;
  /**
   * Which on-disk settings Claude Code loads. Default: the project's own (its CLAUDE.md and
   * .claude/settings.json, read from the task's worktree); never the host user's.
   */
  settingSources?: SettingSource[];
  pathToClaudeCodeExecutable?: string;
  logger?: Logger;
  now?: () => number;
  /** Called with the pid of every Claude Code process started (diagnostics, tests). */
  onSpawn?: (pid: number) => void;
}

const ContentBlock = z.union([
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.unknown() }),
  z.object({
    type: z.literal('tool_result'),
    tool_use_id: z.string(),
    is_error: z.boolean().optional(),
    content: z.unknown().optional(),
  }),
  z.object({ type: z.string() }),
]);
const Content = z.union([z.string(), z.array(ContentBlock)]);
type Block = z.infer<typeof ContentBlock>;

function blocksOf(content: unknown): Block[] {
  const parsed = Content.safeParse(content);
  if (!parsed.success) return [];
  return typeof parsed.data === 'string' ? [{ type: 'text', text: parsed.data }] : parsed.data;
}

interface RunState {
  task: TaskSubmit;
  /** Where Claude Code runs: the task's worktree, or the project itself. */
  cwd: string;
  sink: ExecutionSink;
  sessionId: string | undefined;
  usage: UsageAggregator;
  /** Running totals for the progress message, from the assistant messages as they come. */
  live: LiveUsage;
  /** The response each stream (main loop: '', a subagent: its tool use id) is receiving now. */
  streaming: Map<string, string>;
  files: FileChangeTracker;
  commands: string[];
  /** Assistant text of the whole task, for partial results. */
  text: string[];
  lastAssistantError: string | undefined;
  /** Tool calls awaiting their result: id → the step they were shown as. */
  toolCalls: Map<string, { tool: string; message: string }>;
  confinement: TaskConfinement;
}

/** Runs a task with the real Claude Agent SDK (and the Claude Code binary it ships). */
export class ClaudeExecutor implements Executor {
  private readonly opts: ClaudeExecutorOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly ledger: ProcessLedger | undefined;

  constructor(opts: ClaudeExecutorOptions = {}) {
    this.opts = opts;
    this.log = opts.logger ?? pino({ level: 'silent' });
    this.now = opts.now ?? Date.now;
    this.ledger = opts.stateDir === undefined ? undefined : new ProcessLedger(opts.stateDir);
  }

  /** Ends every Claude Code process group an earlier run of this agent left running. */
  async reapLeftovers(): Promise<void> {
    if (this.ledger === undefined) return;
    for (const group of await this.ledger.reap({ graceMs: this.killGraceMs })) {
      if (group.wasAlive)
        this.log.warn(
          { taskId: group.taskId, pgid: group.pgid },
          'ended Claude Code left running by an earlier run',
        );
    }
  }

  private get killGraceMs(): number {
    return this.opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  }

  async execute(
    task: TaskSubmit,
    sink: ExecutionSink,
    signal: AbortSignal,
    place?: ExecutionPlace,
  ): Promise<ExecutionOutcome> {
    try {
      return await this.run(
        task,
        sink,
        signal,
        place?.cwd ?? task.localPath,
        place?.projectPath ?? task.localPath,
      );
    } catch (err) {
      const error = redactSecrets(err instanceof Error ? err.message : String(err), this.secrets());
      this.log.error({ taskId: task.taskId, error }, 'claude executor failed');
      return { kind: 'failed', payload: { error, recoverable: false, errorCode: 'EXECUTION_FAILED' } };
    }
  }

  /** Last known cumulative totals per session, so resumed runs report only their own usage. */
  private readonly sessionTotals = new Map<string, InvocationUsage>();

  private rememberSessionTotals(sessionId: string, usage: InvocationUsage): void {
    this.sessionTotals.delete(sessionId);
    this.sessionTotals.set(sessionId, usage);
    if (this.sessionTotals.size > SESSION_TOTALS_LIMIT) {
      const oldest = this.sessionTotals.keys().next().value;
      if (oldest !== undefined) this.sessionTotals.delete(oldest);
    }
  }

  private secrets(): string[] {
    const key = this.opts.apiKey ?? process.env.ANTHROPIC_API_KEY;
    return key ? [key] : [];
  }

  private get policy(): ConfinementPolicy {
    return this.opts.confinement ?? DEFAULT_CONFINEMENT;
  }

  /** An allow-list, not a deny-list: a credential nobody thought of stays out too. */
  private childEnv(tmpDir: string): Record<string, string | undefined> {
    const base = this.opts.env ?? process.env;
    const env: Record<string, string | undefined> = allowListedEnv(base, this.policy.passEnv);
    env.TMPDIR = tmpDir;
    const apiKey = this.opts.apiKey ?? base.ANTHROPIC_API_KEY;
    const baseUrl = this.opts.baseUrl ?? base.ANTHROPIC_BASE_URL;
    if (apiKey) env.ANTHROPIC_API_KEY = apiKey;
    if (baseUrl) env.ANTHROPIC_BASE_URL = baseUrl;
    if (base.ANTHROPIC_AUTH_TOKEN) env.ANTHROPIC_AUTH_TOKEN = base.ANTHROPIC_AUTH_TOKEN;
    if (base.CLAUDE_CODE_OAUTH_TOKEN) env.CLAUDE_CODE_OAUTH_TOKEN = base.CLAUDE_CODE_OAUTH_TOKEN;
    if (this.opts.home) {
      env.HOME = this.opts.home;
      env.CLAUDE_CONFIG_DIR = `${this.opts.home}/.claude`;
    }
    env.CLAUDE_CODE_MAX_RETRIES = String(this.opts.maxRetries ?? 2);
    env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = '1';
    env.DISABLE_AUTOUPDATER = '1';
    env.DISABLE_TELEMETRY = '1';
    env.DISABLE_ERROR_REPORTING = '1';
    // Tool search adds a placeholder tool to every request; the model must be offered exactly the bot's tools.
    env.ENABLE_TOOL_SEARCH = 'false';
    env.CLAUDE_AGENT_SDK_CLIENT_APP = 'bematic-agent';
    return env;
  }

  private async run(
    task: TaskSubmit,
    sink: ExecutionSink,
    signal: AbortSignal,
    cwd: string,
    projectPath: string,
  ): Promise<ExecutionOutcome> {
    const started = this.now();
    const cwdStat = await stat(cwd).catch(() => undefined);
    if (!cwdStat?.isDirectory()) {
      return {
        kind: 'failed',
        payload: {
          error: `Project directory does not exist: ${cwd}`,
          recoverable: false,
          errorCode: 'PATH_NOT_ALLOWED',
        },
      };
    }
    if (signal.aborted) return { kind: 'cancelled', payload: { reason: 'Cancelled before start' } };

    const confinement = await confineTask({
      cwd,
      projectPath,
      taskId: task.taskId,
      allowedTools: task.allowedTools,
      policy: this.policy,
      ...(this.opts.home !== undefined && { homes: [this.opts.home] }),
      ...(this.opts.env?.PATH !== undefined && { searchPath: this.opts.env.PATH }),
    });
    try {
      return await this.runConfined(task, sink, signal, cwd, confinement, started);
    } finally {
      await confinement.release();
    }
  }

  private async runConfined(
    task: TaskSubmit,
    sink: ExecutionSink,
    signal: AbortSignal,
    cwd: string,
    confinement: TaskConfinement,
    started: number,
  ): Promise<ExecutionOutcome> {
    const gitBefore = await gitStatus(cwd);
    const state: RunState = {
      task,
      sink,
      sessionId: task.resumeSessionId,
      usage: new UsageAggregator(),
      live: new LiveUsage(),
      streaming: new Map(),
      cwd,
      files: new FileChangeTracker(cwd),
      commands: [],
      text: [],
      lastAssistantError: undefined,
      toolCalls: new Map(),
      confinement,
    };
    const maxContinuations = task.maxContinuations ?? this.opts.maxContinuations ?? MAX_CONTINUATIONS;
    const secrets = this.secrets();

    // The caller owns every reason to stop (cancel, the task's time limit, shutdown) and says which.
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    signal.addEventListener('abort', onAbort, { once: true });

    const finish = async (): Promise<{ metrics: TaskMetrics; filesChanged: string[] }> => {
      const gitAfter = await gitStatus(cwd);
      state.files.add(gitChangesBetween(gitBefore, gitAfter));
      return { metrics: state.usage.metrics(this.now() - started), filesChanged: state.files.list() };
    };
    const partial = (): string => redactSecrets(state.text.join('\n\n'), secrets).slice(0, 500_000);

    try {
      for (let invocation = 0; ; invocation++) {
        const remainingBudget =
          task.maxBudgetUsd === undefined ? undefined : task.maxBudgetUsd - state.usage.costUsd;
        const proc = new ClaudeProcessHandle({
          taskId: task.taskId,
          onStderr: (chunk) =>
            this.log.debug({ taskId: task.taskId, stderr: redactSecrets(chunk, secrets) }, 'claude stderr'),
          onSpawn: this.opts.onSpawn,
          ledger: this.ledger,
          killGraceMs: this.killGraceMs,
        });
        const baseline = state.sessionId ? this.sessionTotals.get(state.sessionId) : undefined;
        const prompt =
          invocation === 0
            ? await promptWithAttachments(task.prompt, task.attachments, cwd)
            : CONTINUE_PROMPT;
        const result = await this.invoke(state, prompt, {
          abort,
          proc,
          remainingBudget,
        });
        // Claude Code and everything it started must really be gone before we report.
        await proc.ensureExited({ stop: abort.signal.aborted, waitMs: 10_000 });
        if (result) {
          const usage = usageOfResult(result);
          state.usage.add(usage, baseline);
          if (state.sessionId) this.rememberSessionTotals(state.sessionId, usage);
        }

        if (abort.signal.aborted) {
          const { metrics } = await finish();
          const payload: Extract<ExecutionOutcome, { kind: 'cancelled' }>['payload'] = {
            reason: 'Cancelled',
            partialResult: partial(),
            metrics,
          };
          if (state.sessionId) payload.sessionId = state.sessionId;
          return { kind: 'cancelled', payload };
        }
        if (!result) {
          const { metrics } = await finish();
          const stderr = redactSecrets(proc.stderr.trim(), secrets);
          const detail = stderr.length > 0 ? `: ${stderr.slice(-1000)}` : '';
          return this.failed(
            state,
            metrics,
            `Claude Code exited without a result${detail}`,
            'EXECUTION_FAILED',
            false,
          );
        }

        if (result.subtype === 'error_max_turns') {
          if (invocation < maxContinuations && state.sessionId) {
            sink.progress({
              kind: 'continuation',
              message: `Auto-continuing (${invocation + 1}/${maxContinuations})…`,
              usage: state.live.snapshot(state.usage.costUsd),
            });
            continue;
          }
          const { metrics, filesChanged } = await finish();
          return this.completed(
            state,
            partial(),
            metrics,
            filesChanged,
            `Stopped after ${invocation} auto-continuations without finishing; the result is partial.`,
          );
        }
        if (result.subtype === 'error_max_budget_usd') {
          const { metrics } = await finish();
          return this.budgetExceeded(state, metrics);
        }
        if (result.subtype === 'success' && !result.is_error) {
          const { metrics, filesChanged } = await finish();
          if (task.maxBudgetUsd !== undefined && metrics.costUsd > task.maxBudgetUsd) {
            return this.budgetExceeded(state, metrics);
          }
          return this.completed(state, redactSecrets(result.result, secrets), metrics, filesChanged);
        }
        const { metrics } = await finish();
        const unavailable = sandboxUnavailable(result);
        if (unavailable !== undefined)
          return this.failed(state, metrics, unavailable, 'SANDBOX_UNAVAILABLE', false);
        const text =
          result.subtype === 'success'
            ? result.result
            : result.errors.join('; ') || `Claude Code stopped: ${result.subtype}`;
        const status = result.subtype === 'success' ? result.api_error_status : undefined;
        const mapped = mapModelError(status, state.lastAssistantError, text);
        if (mapped.errorCode === 'CREDENTIALS_MISSING') {
          this.log.error(
            { taskId: task.taskId, code: mapped.errorCode },
            'Claude Code has no credentials: set ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) for the agent, or run `claude login` as the user the agent runs as',
          );
        }
        return this.failed(
          state,
          metrics,
          redactSecrets(text, secrets),
          mapped.errorCode,
          mapped.recoverable,
        );
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** One query() call; resolves with its result message, or undefined if there was none. */
  private async invoke(
    state: RunState,
    prompt: string | AsyncIterable<SDKUserMessage>,
    ctx: { abort: AbortController; proc: ClaudeProcessHandle; remainingBudget: number | undefined },
  ): Promise<SDKResultMessage | undefined> {
    const { task, confinement } = state;
    const options: Options = {
      cwd: state.cwd,
      model: task.model,
      systemPrompt: task.systemPrompt,
      // `tools` is what the model is offered; what runs unasked and what is refused is the confinement's.
      tools: [...task.allowedTools],
      ...confinement.options,
      canUseTool: createPermissionGate({
        scope: confinement.scope,
        sandbox: this.policy.sandbox,
        secrets: this.secrets(),
        ask: (request, signal) =>
          state.sink.requestApproval?.(request, signal) ?? Promise.resolve('undeliverable'),
        onDecision: (e) =>
          this.log.info(
            { taskId: task.taskId, tool: e.tool, summary: e.summary, decision: e.decision },
            'permission',
          ),
      }),
      // The stream's message_delta carries a response's final usage, which the assistant messages do not.
      includePartialMessages: true,
      permissionMode: this.opts.permissionMode ?? 'default',
      settingSources: this.opts.settingSources ?? ['project'],
      maxTurns: this.opts.maxTurns ?? DEFAULT_MAX_TURNS,
      abortController: ctx.abort,
      env: this.childEnv(confinement.scope.tmpDir),
      spawnClaudeCodeProcess: ctx.proc.spawn,
    };
    if (task.mcpServers !== undefined && Object.keys(task.mcpServers).length > 0) {
      // alwaysLoad: the tools are in the first request, so what the model is offered does not depend on timing.
      options.mcpServers = Object.fromEntries(
        Object.entries(task.mcpServers).map(([name, server]) => [name, { ...server, alwaysLoad: true }]),
      );
      // Only the servers the project declares, never a .mcp.json the repository (or the model) wrote.
      options.strictMcpConfig = true;
      // Declared by the project's admin, so their tools run like the bot's own.
      options.allowedTools = [
        ...(confinement.options.allowedTools ?? []),
        ...Object.keys(task.mcpServers).map((n) => `mcp__${n}`),
      ];
    }
    if (ctx.remainingBudget !== undefined) options.maxBudgetUsd = Math.max(ctx.remainingBudget, 0.000001);
    if (state.sessionId) options.resume = state.sessionId;
    if (this.opts.pathToClaudeCodeExecutable)
      options.pathToClaudeCodeExecutable = this.opts.pathToClaudeCodeExecutable;

    let result: SDKResultMessage | undefined;
    state.lastAssistantError = undefined;
    try {
      for await (const message of query({ prompt, options })) {
        if (message.type === 'result') result = message;
        else this.observe(state, message);
        if (message.type === 'result' || message.type === 'system') {
          if (typeof message.session_id === 'string' && message.session_id.length > 0)
            state.sessionId = message.session_id;
        }
      }
    } catch (err) {
      // The SDK throws after an error result too; the result message is what counts.
      if (!result && !ctx.abort.signal.aborted) {
        this.log.warn(
          { taskId: task.taskId, error: redactSecrets(String(err), this.secrets()) },
          'claude query ended with an error',
        );
      }
    }
    return result;
  }

  private observe(state: RunState, message: SDKMessage): void {
    const { sink } = state;
    if (message.type === 'assistant') {
      if (message.error) state.lastAssistantError = message.error;
      const topLevel = message.parent_tool_use_id === null;
      state.live.note(message.message.id, message.message.usage, topLevel);
      for (const b of blocksOf(message.message.content)) {
        if (b.type === 'text' && 'text' in b && topLevel && !message.error) {
          const text = redactSecrets(b.text, this.secrets());
          if (text.length === 0) continue;
          sink.stream(state.text.length > 0 ? `\n\n${text}` : text);
          state.text.push(text);
        } else if (b.type === 'tool_use' && 'name' in b) {
          const step = redactSecrets(describeToolUse(b.name, b.input, state.cwd), this.secrets()).slice(
            0,
            2000,
          );
          const input = summarizeToolInput(b.name, b.input, state.cwd);
          sink.progress({
            kind: 'tool',
            tool: b.name,
            message: step,
            toolUseId: b.id,
            ...(input !== undefined ? { input: redactSecrets(input, this.secrets()) } : {}),
            usage: state.live.snapshot(state.usage.costUsd),
          });
          state.toolCalls.set(b.id, { tool: b.name, message: step });
          state.files.noteToolUse(b.id, b.name, b.input);
          const command = bashCommand(b.name, b.input);
          if (command !== undefined)
            state.commands.push(redactSecrets(command, this.secrets()).slice(0, 10_000));
        }
      }
    } else if (message.type === 'stream_event') {
      const stream = message.parent_tool_use_id ?? '';
      const { event } = message;
      if (event.type === 'message_start') {
        state.streaming.set(stream, event.message.id);
        state.live.note(event.message.id, event.message.usage, stream === '');
      } else if (event.type === 'message_delta') {
        const id = state.streaming.get(stream);
        if (id !== undefined) state.live.note(id, event.usage, stream === '');
      }
    } else if (message.type === 'user') {
      for (const b of blocksOf(message.message.content)) {
        if (b.type === 'tool_result' && 'tool_use_id' in b) {
          state.files.noteToolResult(b.tool_use_id, b.is_error === true);
          const call = state.toolCalls.get(b.tool_use_id);
          if (call) {
            state.toolCalls.delete(b.tool_use_id);
            sink.progress({
              kind: 'tool',
              tool: call.tool,
              message: call.message,
              toolUseId: b.tool_use_id,
              result: redactSecrets(toolResultText(b.content), this.secrets()),
              isError: b.is_error === true,
              usage: state.live.snapshot(state.usage.costUsd),
            });
          }
        }
      }
    }
  }

  private completed(
    state: RunState,
    result: string,
    metrics: TaskMetrics,
    filesChanged: string[],
    warning?: string,
  ): ExecutionOutcome {
    const payload: Extract<ExecutionOutcome, { kind: 'completed' }>['payload'] = {
      result: result.slice(0, 500_000),
      metrics,
      filesChanged,
      commandsRun: state.commands,
    };
    if (state.sessionId) payload.sessionId = state.sessionId;
    if (warning) payload.warning = warning;
    return { kind: 'completed', payload };
  }

  private failed(
    state: RunState,
    metrics: TaskMetrics,
    error: string,
    errorCode: Extract<ExecutionOutcome, { kind: 'failed' }>['payload']['errorCode'],
    recoverable: boolean,
  ): ExecutionOutcome {
    const payload: Extract<ExecutionOutcome, { kind: 'failed' }>['payload'] = {
      error: error.slice(0, 10_000),
      recoverable,
      errorCode,
      metrics,
    };
    if (state.sessionId) payload.sessionId = state.sessionId;
    return { kind: 'failed', payload };
  }

  private budgetExceeded(state: RunState, metrics: TaskMetrics): ExecutionOutcome {
    const limit = state.task.maxBudgetUsd ?? 0;
    const outcome = this.failed(
      state,
      metrics,
      `Budget exceeded: spent $${metrics.costUsd.toFixed(4)} of $${limit.toFixed(4)} ` +
        `(${metrics.inputTokens} input, ${metrics.outputTokens} output, ${metrics.cacheReadTokens} cache-read, ` +
        `${metrics.cacheCreationTokens} cache-write tokens)`,
      'BUDGET_EXCEEDED',
      false,
    );
    if (outcome.kind === 'failed')
      outcome.payload.context = { costUsd: metrics.costUsd, maxBudgetUsd: limit };
    return outcome;
  }
}
