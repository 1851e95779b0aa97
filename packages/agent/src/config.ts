import path from 'node:path';
import { AGENT_WS_PATH } from '@bematic/protocol';
import { z } from 'zod';

export interface AgentConfig {
  /** Full WebSocket URL of the cloud's agent endpoint, e.g. ws://host:3000/ws/agent. */
  cloudUrl: string;
  agentId: string;
  agentKey: string;
  maxConcurrentTasks: number;
  /** Absolute directories the agent may run tasks in. */
  roots: string[];
  cpuThreshold: number;
  memoryThreshold: number;
  reconnectMaxMs: number;
  /** Where the outbound buffer persists terminal results; undefined keeps them in memory only. */
  stateDir: string | undefined;
}

export interface AgentSetting {
  name: string;
  description: string;
  default?: string;
  required?: boolean;
}

/** Every environment variable the agent reads, for the README and `--help`. */
export const AGENT_SETTINGS: readonly AgentSetting[] = [
  {
    name: 'BEMATIC_CLOUD_URL',
    description: `Base URL of the cloud (ws://, wss://, http:// or https://); the agent connects to <base>${AGENT_WS_PATH}`,
    required: true,
  },
  { name: 'BEMATIC_AGENT_ID', description: 'Identifier this agent authenticates as', required: true },
  { name: 'BEMATIC_AGENT_KEY', description: 'API key issued by `bematic keys create`', required: true },
  { name: 'MAX_CONCURRENT_TASKS', description: 'Agent-wide limit of tasks running at once', default: '3' },
  {
    name: 'BEMATIC_AGENT_ROOTS',
    description: `Directories tasks may run in, separated by "${path.delimiter}"`,
    default: 'the current directory',
  },
  {
    name: 'BEMATIC_CPU_THRESHOLD',
    description: 'CPU usage (%) above which the agent refuses new tasks',
    default: '90',
  },
  {
    name: 'BEMATIC_MEMORY_THRESHOLD',
    description: 'Memory usage (%) above which the agent refuses new tasks',
    default: '90',
  },
  {
    name: 'BEMATIC_RECONNECT_MAX_MS',
    description: 'Upper bound of the reconnect backoff delay, in milliseconds',
    default: '30000',
  },
  {
    name: 'BEMATIC_AGENT_STATE_DIR',
    description: 'Directory where undelivered task results are kept across agent restarts',
    default: 'in memory only',
  },
];

export class AgentConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid agent configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'AgentConfigError';
  }
}

const intSetting = (name: string, def: number, min: number, max: number) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be an integer from ${min} to ${max}, got "${v}"`,
        });
        return z.NEVER;
      }
      return n;
    });

const required = (name: string, hint: string) =>
  z
    .string({ error: `${name} is required (${hint})` })
    .trim()
    .min(1, `${name} is required (${hint})`);

const EnvSchema = z.object({
  BEMATIC_CLOUD_URL: required('BEMATIC_CLOUD_URL', 'e.g. ws://localhost:3000').transform((v, ctx) => {
    const url = agentWsUrl(v);
    if (url === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `BEMATIC_CLOUD_URL must be a ws://, wss://, http:// or https:// URL, got "${v}"`,
      });
      return z.NEVER;
    }
    return url;
  }),
  BEMATIC_AGENT_ID: required('BEMATIC_AGENT_ID', 'the id this agent authenticates as').pipe(
    z.string().max(200, 'BEMATIC_AGENT_ID must be at most 200 characters'),
  ),
  BEMATIC_AGENT_KEY: required('BEMATIC_AGENT_KEY', 'create one with `bematic keys create`').pipe(
    z.string().max(500, 'BEMATIC_AGENT_KEY must be at most 500 characters'),
  ),
  MAX_CONCURRENT_TASKS: intSetting('MAX_CONCURRENT_TASKS', 3, 1, 1000),
  BEMATIC_AGENT_ROOTS: z.string().optional(),
  BEMATIC_CPU_THRESHOLD: intSetting('BEMATIC_CPU_THRESHOLD', 90, 1, 100),
  BEMATIC_MEMORY_THRESHOLD: intSetting('BEMATIC_MEMORY_THRESHOLD', 90, 1, 100),
  BEMATIC_RECONNECT_MAX_MS: intSetting('BEMATIC_RECONNECT_MAX_MS', 30_000, 1, 3_600_000),
  BEMATIC_AGENT_STATE_DIR: z.string().optional(),
});

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
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw new AgentConfigError(parsed.error.issues.map((i) => i.message));
  const e = parsed.data;
  const roots = (e.BEMATIC_AGENT_ROOTS ?? '')
    .split(path.delimiter)
    .map((r) => r.trim())
    .filter((r) => r.length > 0)
    .map((r) => path.resolve(cwd, r));
  const stateDir = e.BEMATIC_AGENT_STATE_DIR?.trim();
  return {
    cloudUrl: e.BEMATIC_CLOUD_URL,
    agentId: e.BEMATIC_AGENT_ID,
    agentKey: e.BEMATIC_AGENT_KEY,
    maxConcurrentTasks: e.MAX_CONCURRENT_TASKS,
    roots: roots.length > 0 ? roots : [cwd],
    cpuThreshold: e.BEMATIC_CPU_THRESHOLD,
    memoryThreshold: e.BEMATIC_MEMORY_THRESHOLD,
    reconnectMaxMs: e.BEMATIC_RECONNECT_MAX_MS,
    stateDir: stateDir ? path.resolve(cwd, stateDir) : undefined,
  };
}
