import {
  defineSettings,
  LOG_SETTINGS,
  readSettings,
  type Setting,
  type SettingsValues,
  settingSchemas,
} from '@bematic/protocol';
import { z } from 'zod';

const { int, number: num } = settingSchemas;

/**
 * Every cloud setting: its environment variable, default and meaning. The
 * README's configuration table is generated from this list (`npm run docs:config`);
 * start-up validates it and names the offending variable in the error.
 */
export const CLOUD_SETTINGS = defineSettings([
  {
    name: 'DATABASE_URL',
    schema: z.string().regex(/^(sqlite:|postgres(ql)?:\/\/)/, 'must start with sqlite: or postgres://'),
    default: 'sqlite:./.bematic/bematic.db',
    doc: 'Database: sqlite:<path> (embedded) or postgres://user@host/db',
  },
  {
    name: 'PORT',
    schema: int(0).max(65535),
    default: '3000',
    doc: 'HTTP port for the dashboard, API, /metrics and the agent WebSocket (/ws/agent)',
  },
  {
    name: 'HOST',
    schema: z.string().min(1),
    default: '127.0.0.1',
    doc: 'Interface the HTTP server binds to (0.0.0.0 to accept remote agents)',
  },
  {
    name: 'SLACK_BOT_TOKEN',
    secret: true,
    schema: z.string().startsWith('xoxb-').optional(),
    doc: 'Slack bot token (xoxb-…)',
  },
  {
    name: 'SLACK_APP_TOKEN',
    secret: true,
    schema: z.string().startsWith('xapp-').optional(),
    doc: 'Slack app-level token (xapp-…): enables Socket Mode',
  },
  {
    name: 'SLACK_SIGNING_SECRET',
    secret: true,
    schema: z.string().min(1).optional(),
    doc: 'Slack signing secret: HTTP events mode when no app token is set',
  },
  {
    name: 'SLACK_API_URL',
    schema: z.string().url().optional(),
    doc: "Slack Web API base URL (default Slack's own); Socket Mode follows it too",
  },
  ...LOG_SETTINGS,
  {
    name: 'BEMATIC_HEARTBEAT_MS',
    schema: int(100),
    default: '15000',
    doc: 'Heartbeat interval; an agent is offline after two missed intervals',
  },
  {
    name: 'BEMATIC_AUTH_TIMEOUT_MS',
    schema: int(100),
    default: '10000',
    doc: 'Time an agent has to send AUTH_REQUEST after connecting',
  },
  {
    name: 'BEMATIC_OFFLINE_TTL_MS',
    schema: int(1000),
    default: String(24 * 3600_000),
    doc: 'How long a task waits in the offline queue before it fails',
  },
  {
    name: 'BEMATIC_RECONNECT_GRACE_MS',
    schema: int(1000),
    default: String(10 * 60_000),
    doc: 'How long the tasks of a disconnected agent (or, after a cloud restart, of any agent) wait for it before failing AGENT_LOST; the agent, told this value, stops them up to 10 s earlier',
  },
  {
    name: 'BEMATIC_DEFAULT_ROLE',
    schema: z.enum(['admin', 'developer', 'viewer']),
    default: 'developer',
    doc: 'Role given to users seen for the first time',
  },
  {
    name: 'BEMATIC_ADMIN_USERS',
    schema: z.string(),
    default: '',
    doc: 'Comma-separated user ids that are always admins',
  },
  {
    name: 'BEMATIC_RATE_LIMIT',
    schema: int(1),
    default: '20',
    doc: 'Tasks one user may start per rate-limit window',
  },
  { name: 'BEMATIC_RATE_WINDOW_MS', schema: int(1000), default: String(3600_000), doc: 'Rate-limit window' },
  {
    name: 'BEMATIC_PROGRESS_INTERVAL_MS',
    schema: int(100),
    default: '3000',
    doc: 'Minimum time between two updates of a progress message',
  },
  {
    name: 'BEMATIC_SLACK_UPDATES_PER_MINUTE',
    schema: int(1),
    default: '45',
    doc: "Task message updates (chat.update) per minute shared by all tasks of the Slack workspace, finals first; Slack's tier allows 50, the rest is left for other updates. With several instances, divide it among them",
  },
  {
    name: 'BEMATIC_MODEL_PREMIUM',
    schema: z.string().min(1),
    default: 'claude-opus-5-5',
    doc: 'Model for write commands (premium tier)',
  },
  {
    name: 'BEMATIC_MODEL_STANDARD',
    schema: z.string().min(1),
    default: 'claude-sonnet-5-5',
    doc: 'Model for read-only commands (standard tier)',
  },
  {
    name: 'BEMATIC_MODEL_FAST',
    schema: z.string().min(1),
    default: 'claude-haiku-5-5',
    doc: 'Model for the fast tier (--model fast)',
  },
  {
    name: 'BEMATIC_RETENTION_DAYS',
    schema: num(0),
    default: '30',
    doc: 'Terminal tasks older than this are archived (0 disables)',
  },
  {
    name: 'BEMATIC_ADMIN_CHANNEL',
    schema: z.string().optional(),
    doc: 'Channel for resource warnings and admin notices',
  },
  { name: 'BEMATIC_CACHE_TTL_MS', schema: int(0), default: '30000', doc: 'Cache entry lifetime' },
  {
    name: 'BEMATIC_CONSOLE_TOKEN',
    schema: z.string().min(16, 'must be at least 16 characters').optional(),
    doc: 'Console/dashboard sign-in token for deployments (login form or Authorization: Bearer); otherwise a one-time login link is printed at start-up',
  },
  {
    name: 'BEMATIC_PUBLIC_URL',
    schema: z.string().url().optional(),
    doc: 'Address people reach the dashboard by (its host is accepted besides localhost; Slack links to task pages use it)',
  },
  {
    name: 'BEMATIC_METRICS_TOKEN',
    schema: z.string().min(16, 'must be at least 16 characters').optional(),
    doc: '/metrics needs Authorization: Bearer <token> when set (open otherwise)',
  },
  {
    name: 'BEMATIC_APPROVAL_TIMEOUT_MS',
    schema: int(1000),
    default: '600000',
    doc: 'How long a command waits for Approve/Deny in the thread before it is denied',
  },
  {
    name: 'BEMATIC_INSTANCE_ID',
    schema: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/, 'letters, digits, ".", "_" or "-", at most 48')
      .optional(),
    doc: 'Name of this cloud instance in logs, metrics, /readyz and /bm agents (`bematic cloud --instance-id`); default <hostname>-<pid>',
  },
  {
    name: 'BEMATIC_LEADER_LEASE_MS',
    schema: int(100),
    default: '15000',
    doc: 'PostgreSQL: how often instances try to take the leader lock; when the leader dies another takes its jobs (retention, queue expiry, reconciliation) within this time',
  },
]);

export type CloudSettingName = (typeof CLOUD_SETTINGS)[number]['name'];
export type CloudConfig = SettingsValues<typeof CLOUD_SETTINGS>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the cloud's settings; throws ConfigError listing every problem at once. */
export function loadCloudConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<CloudSettingName, string>> = {},
): CloudConfig {
  const read = readSettings(CLOUD_SETTINGS, env, overrides);
  const problems = read.ok ? [] : read.problems;
  const cfg = read.values as CloudConfig;
  if (cfg.SLACK_APP_TOKEN && !cfg.SLACK_BOT_TOKEN)
    problems.push('SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is missing');
  if (cfg.SLACK_BOT_TOKEN && !cfg.SLACK_APP_TOKEN && !cfg.SLACK_SIGNING_SECRET) {
    problems.push(
      'SLACK_BOT_TOKEN needs either SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP events)',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}

/** Which Slack mode the configuration selects. */
export function slackMode(cfg: CloudConfig): 'socket' | 'http' | 'off' {
  if (!cfg.SLACK_BOT_TOKEN) return 'off';
  return cfg.SLACK_APP_TOKEN ? 'socket' : 'http';
}

/** The default of one cloud setting, for code that needs it without a loaded configuration. */
export function cloudSettingDefault(name: CloudSettingName): string {
  const settings: readonly Setting[] = CLOUD_SETTINGS;
  const value = settings.find((s) => s.name === name)?.default;
  if (value === undefined) throw new Error(`${name} has no default`);
  return value;
}
