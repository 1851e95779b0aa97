import os from 'node:os';
import path from 'node:path';
import {
  AGENT_WS_PATH,
  defineSettings,
  type LOG_LEVELS,
  LOG_SETTINGS,
  type LogFormat,
  readSettings,
  type SandboxMode,
  settingSchemas,
} from '@bematic/protocol';
import { z } from 'zod';
import { type ClaudeExecutorOptions, DEFAULT_MAX_TURNS } from './executor/claude/claude-executor.js';
import type { ConfinementPolicy } from './executor/claude/confinement.js';
import { DEFAULT_CPU_WINDOW_MS, type Threshold } from './resources/resource-monitor.js';

export interface AgentConfig {
  /** For the process's logger (bematic agent); absent where the embedder brings its own. */
  logLevel?: (typeof LOG_LEVELS)[number];
  logFormat?: LogFormat;
  /**
   * Full WebSocket URLs of the cloud's agent endpoint, e.g. ws://host:3000/ws/agent: one per cloud instance,
   * tried in turn (the first first; after a disconnect, the next one).
   */
  cloudUrls: string[];
  agentId: string;
  agentKey: string;
  maxConcurrentTasks: number;
  /** Absolute directories the agent may run tasks in. */
  roots: string[];
  cpuThreshold: Threshold;
  memoryThreshold: Threshold;
  /** CPU is judged on its average over this window. */
  cpuWindowMs?: number;
  /** Model turns per query() before auto-continuation starts. */
  maxTurns?: number;
  /** Time limit of a task that does not set its own. */
  taskTimeoutMs?: number;
  /** How long a graceful stop (SIGTERM) waits for running tasks before it stops them. */
  shutdownGraceMs?: number;
  reconnectMaxMs: number;
  /** Where the outbound buffer persists terminal results; undefined keeps them in memory only. */
  stateDir: string | undefined;
  /** Where writing tasks get their git worktrees (never inside a checkout). */
  worktreeDir: string;
  /** Task branches are named `<branchPrefix><task-id>`. */
  branchPrefix: string;
  /** Tasks of one project running at once. */
  projectConcurrency: number;
  /** GitHub REST API base for pull requests (GitHub Enterprise: https://host/api/v3). */
  githubApiUrl: string;
  /** Token pull requests are opened with; stays in the agent (never given to Claude Code). */
  githubToken: string | undefined;
  /** `on` unless the operator set BEMATIC_SANDBOX=off; `unavailable` only when a launcher found no sandbox. */
  sandbox?: SandboxMode;
  sandboxAllowedDomains?: string[];
  /** Claude Code `ask` rules: matching tool calls wait for a person's approval in the thread. */
  approvalRules?: string[];
  /** Environment variables passed to Claude Code beyond the built-in allow-list. */
  passEnv?: string[];
}

/** The confinement every task of this agent runs under (see executor/claude/confinement.ts). */
export function confinementOf(config: AgentConfig): ConfinementPolicy {
  return {
    sandbox: config.sandbox ?? 'on',
    allowedDomains: config.sandboxAllowedDomains ?? [],
    approvalRules: config.approvalRules ?? [],
    passEnv: config.passEnv ?? [],
    protectedPaths: [...(config.stateDir === undefined ? [] : [config.stateDir]), ...config.roots],
  };
}

/** The agent's settings for its Claude executor: confinement, turns per run, where process groups are recorded. */
export function claudeExecutorSettingsOf(
  config: AgentConfig,
): Pick<ClaudeExecutorOptions, 'confinement' | 'maxTurns' | 'stateDir'> {
  return {
    confinement: confinementOf(config),
    ...(config.maxTurns !== undefined && { maxTurns: config.maxTurns }),
    ...(config.stateDir !== undefined && { stateDir: config.stateDir }),
  };
}

/** Splits on commas outside parentheses, so a rule such as `Bash(a,b:*)` stays whole. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of value) {
    if (ch === '(') depth++;
    if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  out.push(current);
  return out.map((x) => x.trim()).filter((x) => x.length > 0);
}

/** A comma-separated list whose every item must pass `invalid` (which says why it does not). */
const listSetting = (name: string, invalid: (item: string) => string | undefined) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const items = splitList(v ?? '');
      for (const item of items) {
        const why = invalid(item);
        if (why !== undefined) ctx.addIssue({ code: 'custom', message: `${name}: "${item}" ${why}` });
      }
      return items;
    });

const { boundedInt, required } = settingSchemas;

/** A percentage above which the agent refuses work, or `off`. */
const thresholdSetting = (name: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .transform((v, ctx): Threshold => {
      if (v === 'off') return 'off';
      const n = Number(v);
      if (v === '' || !Number.isInteger(n) || n < 1 || n > 100) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be an integer from 1 to 100, or off, got "${v}"`,
        });
        return z.NEVER;
      }
      return n;
    });

/**
 * Every environment variable the agent reads: validation, default and meaning.
 * The README table and `bematic config` are generated from this list.
 */
export const AGENT_SETTINGS = defineSettings([
  {
    name: 'BEMATIC_CLOUD_URL',
    schema: required('BEMATIC_CLOUD_URL', 'e.g. ws://localhost:3000').transform((v, ctx) => {
      const urls: string[] = [];
      for (const base of v.split(',').map((u) => u.trim())) {
        const url = base === '' ? undefined : agentWsUrl(base);
        if (url === undefined) {
          ctx.addIssue({
            code: 'custom',
            message: `BEMATIC_CLOUD_URL must be a ws://, wss://, http:// or https:// URL (several: separated by commas), got "${base}"`,
          });
          return z.NEVER;
        }
        urls.push(url);
      }
      return urls;
    }),
    defaultDoc: 'required',
    doc: `Base URL of the cloud (ws://, wss://, http:// or https://); the agent connects to <base>${AGENT_WS_PATH}. Several instances: URLs separated by commas, the agent connects to the first and, after each disconnect, to the next`,
  },
  {
    name: 'BEMATIC_AGENT_ID',
    schema: required('BEMATIC_AGENT_ID', 'the id this agent authenticates as').pipe(
      z.string().max(200, 'BEMATIC_AGENT_ID must be at most 200 characters'),
    ),
    defaultDoc: 'required',
    doc: 'Identifier this agent authenticates as',
  },
  {
    name: 'BEMATIC_AGENT_KEY',
    schema: required('BEMATIC_AGENT_KEY', 'create one with `bematic keys create`').pipe(
      z.string().max(500, 'BEMATIC_AGENT_KEY must be at most 500 characters'),
    ),
    defaultDoc: 'required',
    secret: true,
    doc: 'API key issued by `bematic keys create`',
  },
  {
    name: 'MAX_CONCURRENT_TASKS',
    schema: boundedInt('MAX_CONCURRENT_TASKS', 1, 1000),
    default: '3',
    doc: 'Agent-wide limit of tasks running at once',
  },
  {
    name: 'BEMATIC_AGENT_ROOTS',
    schema: z.string().optional(),
    defaultDoc: 'the current directory',
    doc: 'Directories tasks may run in, separated by the platform path delimiter (":" on Linux and macOS, ";" on Windows)',
  },
  {
    name: 'BEMATIC_CPU_THRESHOLD',
    schema: thresholdSetting('BEMATIC_CPU_THRESHOLD'),
    default: '90',
    doc: 'CPU usage (%, averaged over BEMATIC_CPU_WINDOW_MS) above which the agent refuses new tasks; `off` disables the check',
  },
  {
    name: 'BEMATIC_CPU_WINDOW_MS',
    schema: boundedInt('BEMATIC_CPU_WINDOW_MS', 100, 3_600_000),
    default: String(DEFAULT_CPU_WINDOW_MS),
    doc: 'How long CPU usage must stay above the threshold, on average, before the agent counts as busy (milliseconds)',
  },
  {
    name: 'BEMATIC_MEMORY_THRESHOLD',
    schema: thresholdSetting('BEMATIC_MEMORY_THRESHOLD'),
    default: '90',
    doc: 'Memory usage (%) above which the agent refuses new tasks; `off` disables the check',
  },
  {
    name: 'BEMATIC_MAX_TURNS',
    schema: boundedInt('BEMATIC_MAX_TURNS', 1, 100_000),
    default: String(DEFAULT_MAX_TURNS),
    doc: 'Model turns per Claude Code run; a task that needs more is auto-continued in the same session',
  },
  {
    name: 'BEMATIC_TASK_TIMEOUT_MS',
    schema: boundedInt('BEMATIC_TASK_TIMEOUT_MS', 1000, 7 * 24 * 3_600_000),
    default: String(30 * 60_000),
    doc: 'Time limit of a task (milliseconds); when it passes, Claude Code is stopped and the task fails with TIMEOUT',
  },
  {
    name: 'BEMATIC_SHUTDOWN_GRACE_MS',
    schema: boundedInt('BEMATIC_SHUTDOWN_GRACE_MS', 0, 24 * 3_600_000),
    default: '60000',
    doc: 'How long `bematic agent` waits on SIGTERM for running tasks to finish (milliseconds); then it stops them (recoverable AGENT_LOST) and exits',
  },
  {
    name: 'BEMATIC_RECONNECT_MAX_MS',
    schema: boundedInt('BEMATIC_RECONNECT_MAX_MS', 1, 3_600_000),
    default: '30000',
    doc: 'Upper bound of the reconnect backoff delay, in milliseconds',
  },
  {
    name: 'BEMATIC_AGENT_STATE_DIR',
    schema: z.string().optional(),
    default: './.bematic/agent/',
    doc: 'Directory (relative to where `bematic agent` starts) where task results are journalled until the cloud acknowledges them, across agent restarts',
  },
  {
    name: 'BEMATIC_WORKTREE_DIR',
    schema: z.string().optional(),
    defaultDoc: '<state dir>/worktrees, else ~/.bematic/worktrees/<agent id>',
    doc: 'Directory for the git worktrees of writing tasks (must not be inside a checkout)',
  },
  {
    name: 'BEMATIC_BRANCH_PREFIX',
    schema: z
      .string()
      .trim()
      .refine(
        (p) =>
          /^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(p) &&
          !p.includes('..') &&
          !p.includes('//') &&
          !p.endsWith('.'),
        'BEMATIC_BRANCH_PREFIX must be usable in a git branch name (letters, digits, ".", "_", "-", "/")',
      ),
    default: 'bematic/',
    doc: 'Prefix of task branches: <prefix><task-id>',
  },
  {
    name: 'BEMATIC_PROJECT_CONCURRENCY',
    schema: boundedInt('BEMATIC_PROJECT_CONCURRENCY', 1, 1000).optional(),
    defaultDoc: 'MAX_CONCURRENT_TASKS',
    doc: 'Tasks of one project running at once (each writer in its own worktree)',
  },
  {
    name: 'GITHUB_API_URL',
    schema: z
      .string()
      .trim()
      .refine(
        (v) => /^https?:\/\/[^\s]+$/.test(v) && URL.canParse(v),
        'GITHUB_API_URL must be an http(s) URL',
      )
      .transform((v) => v.replace(/\/+$/, '')),
    default: 'https://api.github.com',
    doc: 'GitHub REST API for pull requests (GitHub Enterprise: https://<host>/api/v3)',
  },
  {
    name: 'GITHUB_TOKEN',
    schema: z.string().optional(),
    secret: true,
    defaultDoc: '—',
    doc: 'Token pull requests are opened with (kept from Claude Code); without it branches are pushed but no PR is opened',
  },
  {
    name: 'BEMATIC_SANDBOX',
    schema: z
      .string()
      .trim()
      .toLowerCase()
      .refine((v) => v === 'on' || v === 'off', {
        error: (i) => `BEMATIC_SANDBOX must be "on" or "off", got "${String(i.input)}"`,
      })
      .transform((v): SandboxMode => (v === 'off' ? 'off' : 'on')),
    default: 'on',
    doc: 'OS sandbox for the commands Claude Code runs (bubblewrap + socat on Linux): `on`, or `off` to run them unconfined',
  },
  {
    name: 'BEMATIC_SANDBOX_ALLOWED_DOMAINS',
    schema: listSetting('BEMATIC_SANDBOX_ALLOWED_DOMAINS', (d) =>
      /^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$|^\[[0-9a-fA-F:]+\]$/.test(d)
        ? undefined
        : 'is not a host name',
    ),
    defaultDoc: 'none',
    doc: 'Comma-separated hosts sandboxed commands may reach without asking (`*.npmjs.org` allowed); any other host is asked for in the thread',
  },
  {
    name: 'BEMATIC_APPROVAL_RULES',
    schema: listSetting('BEMATIC_APPROVAL_RULES', (r) =>
      /^[A-Za-z][A-Za-z0-9_-]*(\(.+\))?$/.test(r) ? undefined : 'is not a rule like Bash(git push:*)',
    ),
    defaultDoc: 'none',
    doc: 'Comma-separated Claude Code permission rules whose calls wait for approval in the thread, e.g. `Bash(git push:*),WebFetch`',
  },
  {
    name: 'BEMATIC_AGENT_PASS_ENV',
    schema: listSetting('BEMATIC_AGENT_PASS_ENV', (n) =>
      /^[A-Za-z_][A-Za-z0-9_]*$/.test(n) ? undefined : 'is not an environment variable name',
    ),
    defaultDoc: 'none',
    doc: 'Comma-separated environment variable names Claude Code may see besides PATH, HOME, USER, SHELL, LANG, LC_*, TERM and TZ',
  },
  ...LOG_SETTINGS,
]);

export class AgentConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid agent configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'AgentConfigError';
  }
}

/**
 * Turns a cloud base URL into the agent endpoint URL: http(s) becomes ws(s) and
 * AGENT_WS_PATH is appended unless already present. Undefined when unusable.
 */
export function agentWsUrl(base: string): string | undefined {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return undefined;
  }
  const protocols: Record<string, string> = {
    'ws:': 'ws:',
    'wss:': 'wss:',
    'http:': 'ws:',
    'https:': 'wss:',
  };
  const protocol = protocols[url.protocol];
  if (protocol === undefined) return undefined;
  url.protocol = protocol;
  const trimmed = url.pathname.replace(/\/+$/, '');
  url.pathname = trimmed.endsWith(AGENT_WS_PATH) ? trimmed : `${trimmed}${AGENT_WS_PATH}`;
  return url.toString();
}

export function loadAgentConfig(
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): AgentConfig {
  const read = readSettings(AGENT_SETTINGS, env);
  if (!read.ok) throw new AgentConfigError(read.problems);
  const e = read.values;
  const roots = (e.BEMATIC_AGENT_ROOTS ?? '')
    .split(path.delimiter)
    .map((r) => r.trim())
    .filter((r) => r.length > 0)
    .map((r) => path.resolve(cwd, r));
  const stateDir = e.BEMATIC_AGENT_STATE_DIR?.trim();
  const resolvedState = stateDir ? path.resolve(cwd, stateDir) : undefined;
  // Worktrees follow only a state dir the operator chose: the default one sits in the directory the agent
  // starts in, often the checkout itself, and worktrees must never be inside a checkout.
  const chosenState = env.BEMATIC_AGENT_STATE_DIR?.trim() ? resolvedState : undefined;
  const worktreeDir = e.BEMATIC_WORKTREE_DIR?.trim();
  return {
    cloudUrls: e.BEMATIC_CLOUD_URL,
    agentId: e.BEMATIC_AGENT_ID,
    agentKey: e.BEMATIC_AGENT_KEY,
    maxConcurrentTasks: e.MAX_CONCURRENT_TASKS,
    roots: roots.length > 0 ? roots : [cwd],
    cpuThreshold: e.BEMATIC_CPU_THRESHOLD,
    memoryThreshold: e.BEMATIC_MEMORY_THRESHOLD,
    cpuWindowMs: e.BEMATIC_CPU_WINDOW_MS,
    maxTurns: e.BEMATIC_MAX_TURNS,
    taskTimeoutMs: e.BEMATIC_TASK_TIMEOUT_MS,
    shutdownGraceMs: e.BEMATIC_SHUTDOWN_GRACE_MS,
    reconnectMaxMs: e.BEMATIC_RECONNECT_MAX_MS,
    stateDir: resolvedState,
    worktreeDir: worktreeDir
      ? path.resolve(cwd, worktreeDir)
      : chosenState
        ? path.join(chosenState, 'worktrees')
        : path.join(
            os.homedir(),
            '.bematic',
            'worktrees',
            e.BEMATIC_AGENT_ID.replace(/[^A-Za-z0-9_.-]/g, '_'),
          ),
    branchPrefix: e.BEMATIC_BRANCH_PREFIX,
    projectConcurrency: e.BEMATIC_PROJECT_CONCURRENCY ?? e.MAX_CONCURRENT_TASKS,
    githubApiUrl: e.GITHUB_API_URL,
    githubToken: e.GITHUB_TOKEN?.trim() || undefined,
    sandbox: e.BEMATIC_SANDBOX,
    sandboxAllowedDomains: e.BEMATIC_SANDBOX_ALLOWED_DOMAINS,
    approvalRules: e.BEMATIC_APPROVAL_RULES,
    passEnv: e.BEMATIC_AGENT_PASS_ENV,
    logLevel: e.BEMATIC_LOG_LEVEL,
    logFormat: e.BEMATIC_LOG_FORMAT,
  };
}
