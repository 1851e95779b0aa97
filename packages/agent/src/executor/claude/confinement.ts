import { mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Options, SandboxSettings, Settings } from '@anthropic-ai/claude-agent-sdk';
import type { SandboxMode } from '@bematic/protocol';

/** What the operator configured for every task of this agent. */
export interface ConfinementPolicy {
  sandbox: SandboxMode;
  /** Hosts sandboxed commands may reach without asking (`*.example.com` allowed). */
  allowedDomains: readonly string[];
  /** Claude Code `ask` rules, e.g. `Bash(git push:*)`: a matching call waits for a person. */
  approvalRules: readonly string[];
  /** Extra environment variable names Claude Code may see, beyond the built-in allow-list. */
  passEnv: readonly string[];
  /** Paths commands must never read besides the user's home: the agent's state dir, key files, other roots. */
  protectedPaths: readonly string[];
}

export const DEFAULT_CONFINEMENT: ConfinementPolicy = {
  sandbox: 'on',
  allowedDomains: [],
  approvalRules: [],
  passEnv: [],
  protectedPaths: [],
};

/** Tools that read or write files by path: held to the task's directories by rules and by `canUseTool`. */
export const FILE_READ_TOOLS = ['Read', 'Glob', 'Grep', 'LS', 'NotebookRead'] as const;
export const FILE_WRITE_TOOLS = ['Edit', 'Write', 'MultiEdit', 'NotebookEdit'] as const;
const FILE_TOOLS: ReadonlySet<string> = new Set([...FILE_READ_TOOLS, ...FILE_WRITE_TOOLS]);

/**
 * Environment Claude Code may inherit: what a shell and a toolchain need, nothing that identifies or
 * authenticates the agent's user. Anything else must be named in BEMATIC_AGENT_PASS_ENV.
 */
const INHERITED_ENV = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TERM',
  'COLORTERM',
  'TZ',
];
const INHERITED_ENV_PREFIXES = ['LC_'];

export function allowListedEnv(
  base: Readonly<Record<string, string | undefined>>,
  passEnv: readonly string[],
): Record<string, string> {
  const names = new Set([...INHERITED_ENV, ...passEnv]);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined) continue;
    if (names.has(k) || INHERITED_ENV_PREFIXES.some((p) => k.startsWith(p))) env[k] = v;
  }
  return env;
}

/** The directories one task may use, as real paths (no links, no `..`). */
export interface TaskScope {
  /** Where Claude Code runs; the only place file tools and commands may write. */
  cwd: string;
  /** The project checkout the task belongs to; readable (it is `cwd` unless the task has a worktree). */
  projectPath: string;
  /** A temp directory of this task alone, given to commands as TMPDIR. */
  tmpDir: string;
}

export interface TaskConfinement {
  scope: TaskScope;
  /** Options for query(): sandbox, permission settings, the tools that run unasked. */
  options: Pick<Options, 'sandbox' | 'settings' | 'allowedTools'>;
  /** Removes the task's temp directory. */
  release(): Promise<void>;
}

/** Claude Code's rule syntax for an absolute path: `//abs/path/**`. */
const absRule = (tool: string, dir: string): string => `${tool}(/${dir.replace(/\/+$/, '')}/**)`;

/**
 * Sandbox and permission settings for one task: commands write only in `cwd` and the task's temp dir,
 * read nothing of the user's home, the agent's state or other checkouts, and reach only the allowed
 * domains; file tools are held to `cwd` (writes) and `cwd` + project (reads).
 */
export async function confineTask(input: {
  cwd: string;
  projectPath: string;
  taskId: string;
  allowedTools: readonly string[];
  policy: ConfinementPolicy;
  /** Home directories whose contents commands may not read (always includes os.homedir()). */
  homes?: readonly string[];
  /** PATH commands get; toolchains installed under the home directory stay readable (default process.env.PATH). */
  searchPath?: string;
}): Promise<TaskConfinement> {
  const cwd = await realpath(input.cwd);
  const projectPath = await realpath(input.projectPath).catch(() => cwd);
  const safeId = input.taskId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  const tmpDir = await realpath(await mkdtemp(path.join(os.tmpdir(), `bematic-${safeId}-`)));
  const scope: TaskScope = { cwd, projectPath, tmpDir };
  const { policy } = input;

  const readRoots = uniq([cwd, projectPath]);
  const permissions: NonNullable<Settings['permissions']> = {
    allow: [absRule('Edit', cwd), ...readRoots.map((d) => absRule('Read', d))],
    ask: [...policy.approvalRules],
    blockReadsOutsideWorkingDirectories: true,
    blockWritesOutsideWorkingDirectories: true,
    disableBypassPermissionsMode: 'disable',
  };
  if (projectPath !== cwd) permissions.blockReadsExemptPaths = [projectPath];

  // Bare names run unasked and outrank every rule, so neither file tools (their path rules above decide)
  // nor Bash is one. A sandboxed command is allowed by `autoAllowBashIfSandboxed`, so one that asks to
  // leave the sandbox or matches an ask rule still reaches a person; without a sandbox, every command does.
  const unasked = input.allowedTools.filter((t) => !FILE_TOOLS.has(t) && t !== 'Bash');
  if (input.allowedTools.includes('Bash')) {
    if (policy.sandbox === 'off') permissions.allow?.push('Bash');
    if (policy.sandbox === 'unavailable') permissions.ask?.push('Bash');
  }

  const options: TaskConfinement['options'] = {
    allowedTools: unasked,
    settings: { permissions },
  };
  if (policy.sandbox === 'on') {
    const searchPath = (input.searchPath ?? process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
    options.sandbox = sandboxSettings(
      scope,
      uniq([os.homedir(), ...(input.homes ?? [])]),
      searchPath,
      policy,
    );
  }

  return {
    scope,
    options,
    release: () => rm(tmpDir, { recursive: true, force: true }),
  };
}

function sandboxSettings(
  scope: TaskScope,
  homes: readonly string[],
  searchPath: readonly string[],
  policy: ConfinementPolicy,
): SandboxSettings {
  const { cwd, projectPath, tmpDir } = scope;
  const inside = (p: string, dir: string) => p === dir || p.startsWith(`${dir}${path.sep}`);
  // Other checkouts next to the project, the user's home and the agent's own files are unreadable;
  // the task's own directories are read back in (allowRead wins over denyRead).
  const denyRead = uniq(
    [...homes, ...policy.protectedPaths, path.dirname(projectPath), path.dirname(cwd)]
      .map((p) => path.resolve(p))
      .filter((p) => p !== path.parse(p).root && !isSystemPath(p)),
  );
  // A toolchain under the home directory (nvm, cargo, pyenv) stays usable: its install prefix is readable.
  const toolchains = searchPath
    .filter((p) => path.isAbsolute(p) && homes.some((h) => inside(p, h)))
    .map((p) => (path.basename(p) === 'bin' ? path.dirname(p) : p))
    .filter((p) => !homes.includes(p));
  const allowRead = uniq([cwd, projectPath, tmpDir, ...toolchains]).filter((p) =>
    denyRead.some((d) => inside(p, d)),
  );
  return {
    enabled: true,
    failIfUnavailable: true,
    autoAllowBashIfSandboxed: true,
    allowUnsandboxedCommands: true,
    network: { allowedDomains: [...policy.allowedDomains] },
    filesystem: { allowWrite: [cwd, tmpDir], denyRead, allowRead },
    credentials: {
      envVars: ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN'].map((name) => ({
        name,
        mode: 'deny' as const,
      })),
    },
  };
}

/** Toolchains live here; denying them would break every command. */
function isSystemPath(p: string): boolean {
  return ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib64', '/opt', '/nix', '/System', '/Library'].some(
    (s) => p === s || p.startsWith(`${s}/`),
  );
}

const uniq = (xs: readonly string[]): string[] => [...new Set(xs)];

export const isFileTool = (tool: string): boolean => FILE_TOOLS.has(tool);
export const isWriteTool = (tool: string): boolean => (FILE_WRITE_TOOLS as readonly string[]).includes(tool);
