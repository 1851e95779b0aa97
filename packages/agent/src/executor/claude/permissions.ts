import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { CanUseTool, PermissionResult } from '@anthropic-ai/claude-agent-sdk';
import {
  type PermissionDecision,
  type PermissionReason,
  redactSecrets,
  type SandboxMode,
} from '@bematic/protocol';
import type { ApprovalRequest } from '../executor.js';
import { isFileTool, isWriteTool, type TaskScope } from './confinement.js';

/** Asks a person (through the cloud) and resolves with their answer; never rejects. */
export type AskPerson = (request: ApprovalRequest, signal: AbortSignal) => Promise<PermissionDecision>;

export interface PermissionGateOptions {
  scope: TaskScope;
  sandbox: SandboxMode;
  ask: AskPerson;
  /** Exact values to strip from what is shown to people. */
  secrets: readonly string[];
  /** Told about every decision (progress, audit in the executor's log). */
  onDecision?: (event: { tool: string; summary: string; decision: PermissionDecision | 'refused' }) => void;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * The real location of `p` (relative to `cwd`), following every link on the way, also for a file that does
 * not exist yet: its deepest existing ancestor is resolved and the rest appended.
 */
export async function physicalPath(p: string, cwd: string): Promise<string> {
  const abs = path.isAbsolute(p) ? p : `${cwd}${path.sep}${p}`;
  const parts = abs.split(path.sep).filter((s) => s.length > 0 && s !== '.');
  let current = path.parse(abs).root || path.sep;
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(current, parts[i] ?? '');
    try {
      current = await realpath(next);
    } catch {
      return path.join(next, ...parts.slice(i + 1));
    }
  }
  return current;
}

const within = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir}${path.sep}`);

/** The literal directory a glob pattern starts from (`/etc/**` → `/etc`), or undefined for a relative one. */
function globBase(pattern: string): string | undefined {
  if (!path.isAbsolute(pattern) && !pattern.startsWith('..')) return undefined;
  const parts: string[] = [];
  for (const part of pattern.split('/')) {
    if (/[*?[\]{}]/.test(part)) break;
    parts.push(part);
  }
  return parts.join('/') || '/';
}

/** Every path a file tool call names. */
function pathsOf(tool: string, input: Record<string, unknown>): string[] {
  const paths = [input.file_path, input.notebook_path, input.path].map(str).filter((p) => p !== undefined);
  if (tool === 'Glob' || tool === 'Grep') {
    for (const pattern of [input.pattern, input.glob].map(str)) {
      if (tool === 'Grep' && pattern === input.pattern) continue; // Grep's pattern is a regex, not a path
      const base = pattern === undefined ? undefined : globBase(pattern);
      if (base !== undefined) paths.push(base);
    }
  }
  return paths.length > 0 ? paths : ['.'];
}

/** One line a person can judge: the command, the host, or the tool and its main argument. */
export function summarize(tool: string, input: Record<string, unknown>): string {
  if (tool === 'Bash') return str(input.command) ?? 'a command';
  if (tool === 'SandboxNetworkAccess') {
    const host = str(input.host) ?? 'an unknown host';
    return typeof input.port === 'number' ? `${host}:${input.port}` : host;
  }
  if (tool === 'WebFetch') return str(input.url) ?? 'a web page';
  if (tool === 'WebSearch') return str(input.query) ?? 'a web search';
  const main = [input.file_path, input.path, input.url, input.command].map(str).find((v) => v !== undefined);
  return main === undefined ? tool : `${tool} ${main}`;
}

function reasonOf(tool: string, input: Record<string, unknown>, sandbox: SandboxMode): PermissionReason {
  if (tool === 'SandboxNetworkAccess') return 'network';
  if (tool === 'Bash') {
    if (sandbox !== 'on') return sandbox === 'unavailable' ? 'no_sandbox' : 'approval_rule';
    return input.dangerouslyDisableSandbox === true ? 'unsandboxed_command' : 'approval_rule';
  }
  return 'approval_rule';
}

/**
 * The `canUseTool` of one task. File tools are a hard rule: a path whose real location is outside the
 * task's directories is refused, never asked. Everything else that reaches here is something Claude Code
 * would prompt for, and a person is asked in the thread; "approve for this task" is remembered per request.
 */
export function createPermissionGate(opts: PermissionGateOptions): CanUseTool {
  const { scope } = opts;
  const approvedForTask = new Set<string>();
  const deny = (message: string): PermissionResult => ({ behavior: 'deny', message });

  return async (tool, input, { signal }) => {
    const summary = redactSecrets(summarize(tool, input), opts.secrets).slice(0, 2000);
    if (isFileTool(tool)) {
      const allowed = isWriteTool(tool) ? [scope.cwd] : [scope.cwd, scope.projectPath];
      for (const p of pathsOf(tool, input)) {
        const real = await physicalPath(p, scope.cwd);
        if (!allowed.some((dir) => within(real, dir))) {
          opts.onDecision?.({ tool, summary, decision: 'refused' });
          return deny(
            `${p} is outside this task's ${isWriteTool(tool) ? 'working directory' : 'directories'} ` +
              `(${allowed.join(', ')}); ${isWriteTool(tool) ? 'writes' : 'reads'} there are not allowed.`,
          );
        }
      }
      return { behavior: 'allow', updatedInput: input };
    }

    const key = `${tool}\u0000${summary}`;
    if (approvedForTask.has(key)) {
      opts.onDecision?.({ tool, summary, decision: 'approved_for_task' });
      return { behavior: 'allow', updatedInput: input };
    }
    const decision = await opts.ask({ tool, summary, reason: reasonOf(tool, input, opts.sandbox) }, signal);
    opts.onDecision?.({ tool, summary, decision });
    if (decision === 'approved_for_task') approvedForTask.add(key);
    if (decision === 'approved' || decision === 'approved_for_task')
      return { behavior: 'allow', updatedInput: isRecord(input) ? input : {} };
    return deny(DENIAL_MESSAGES[decision]);
  };
}

const DENIAL_MESSAGES: Record<Exclude<PermissionDecision, 'approved' | 'approved_for_task'>, string> = {
  denied: 'The user denied this. Do not retry it; continue without it or explain what you need.',
  timed_out: 'Nobody approved this in time, so it was denied. Continue without it or explain what you need.',
  cancelled: 'The task was cancelled.',
  undeliverable: 'This needs approval, and nobody could be asked right now, so it was denied.',
};
