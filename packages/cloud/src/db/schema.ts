import type { Generated } from 'kysely';

/**
 * Row shapes as stored. Both dialects store the same primitive types:
 * timestamps are epoch milliseconds (BIGINT, read back as JS numbers), money is
 * DOUBLE PRECISION, booleans are INTEGER 0/1, and JSON is TEXT that the
 * repositories parse on read.
 */

export interface ProjectsTable {
  id: string;
  name: string;
  channel_id: string;
  agent_id: string;
  fallback_agent_ids: string;
  local_path: string;
  default_model: string | null;
  max_budget_usd: number | null;
  default_bot: Generated<string>;
  /** JSON McpServers, or null. */
  mcp_servers: string | null;
  created_at: number;
  updated_at: number;
}

export interface TasksTable {
  id: string;
  project_id: string;
  agent_id: string;
  bot_name: string;
  command: string;
  prompt: string;
  model: string;
  priority: string;
  status: string;
  user_id: string;
  channel_id: string;
  thread_ts: string | null;
  message_ts: string | null;
  progress_message_ts: string | null;
  session_id: string | null;
  parent_task_id: string | null;
  submission: string;
  result: string | null;
  error_message: string | null;
  error_code: string | null;
  recoverable: number | null;
  warning: string | null;
  files_changed: string;
  commands_run: string;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  cost_usd: number;
  duration_ms: number;
  num_turns: number;
  continuations: number;
  restored_from_archive: string | null;
  restored_at: number | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
  /** JSON WorkspaceReport from the task's terminal message, or null. */
  workspace: string | null;
  pull_request_url: string | null;
  attempt: Generated<number>;
}

export interface SessionsTable {
  id: string;
  task_id: string;
  claude_session_id: string | null;
  status: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  duration_ms: number;
  created_at: number;
  completed_at: number | null;
}

export interface UsersTable {
  id: string;
  name: string | null;
  role: string;
  default_project_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface AuditLogsTable {
  id: Generated<number>;
  ts: number;
  action: string;
  actor: string;
  resource_type: string | null;
  resource_id: string | null;
  details: string;
}

export interface OfflineQueueTable {
  id: Generated<number>;
  agent_id: string;
  task_id: string;
  priority: string;
  /** PRIORITY_RANK of `priority`, so the queue sorts with an index instead of a CASE. */
  priority_rank: number;
  payload: string;
  enqueued_at: number;
  expires_at: number;
  attempts: number;
  last_attempt_at: number | null;
}

export interface ApiKeysTable {
  id: string;
  agent_id: string;
  prefix: string;
  key_hash: string;
  label: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface ArchivedTasksTable {
  id: string;
  original_id: string;
  task_data: string;
  reason: string;
  metadata: string;
  archived_at: number;
}

export interface AgentsTable {
  id: string;
  hostname: string | null;
  version: string | null;
  status: string;
  last_seen_at: number | null;
  created_at: number;
  /** The cloud instance holding the agent's socket (null: none). */
  instance_id: string | null;
  /** AGENT_HEALTH code as the holder last saw it (null: not known). */
  health: string | null;
  active_tasks: number | null;
  max_concurrent_tasks: number | null;
}

export interface TaskStepsTable {
  id: Generated<number>;
  task_id: string;
  kind: string;
  tool: string | null;
  message: string;
  /** JSON */
  detail: string | null;
  created_at: number;
}

export interface ConsoleMessagesTable {
  ts: string;
  channel_id: string;
  thread_ts: string | null;
  user_id: string;
  text: string;
  /** JSON array of Block Kit blocks */
  blocks: string | null;
  /** JSON array of reaction names */
  reactions: string;
  visible_to: string | null;
  posted_at: number;
  edited_at: number | null;
}

export interface PermissionRequestsTable {
  id: string;
  task_id: string;
  agent_id: string;
  attempt: number | null;
  tool: string;
  summary: string;
  reason: string;
  /** `pending` or a PermissionDecision. */
  status: string;
  decided_by: string | null;
  channel_id: string | null;
  message_ts: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
}

export interface SlackDeliveriesTable {
  /** `event:<event_id>` or `trigger:<trigger_id>`. */
  id: string;
  kind: string;
  received_at: number;
}

/** A decomposed request's plan (migration 011). */
export interface CancelRequestsTable {
  task_id: string;
  reason: string;
  actor: string;
  requested_at: number;
}

/** A console sign-in credential, by the SHA-256 (hex) of the token or session id; never the secret itself. */
export interface ConsoleCredentialsTable {
  hash: string;
  kind: 'login' | 'session';
  expires_at: number;
}

export interface TaskPlansTable {
  /** The planning task. */
  task_id: string;
  original_command: string;
  /** JSON PlannedSubtask[]. */
  steps: string;
  status: string;
  created_at: number;
  updated_at: number;
  /** The task this plan replaces (the Plan first button; migration 015): unique, so one plan per task. */
  replaces_task_id: string | null;
}

/** Maintained by triggers on `tasks` (migration 008): one row per status, bot and slot. */
export interface TaskTotalsTable {
  status: string;
  bot_name: string;
  slot: number;
  tasks: number;
  cost_usd: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  duration_ms: number;
}

/**
 * Maintained by triggers on `tasks` (migration 016): tasks created and their cost per bucket of creation time,
 * by `dim`: `time` (key '', quarter-hour buckets), `project` and `user` (key the id, day buckets, UTC).
 */
export interface TaskCostsTable {
  dim: string;
  key: string;
  /** Start of the bucket, epoch ms. */
  bucket: number;
  slot: number;
  tasks: number;
  cost_usd: number;
}

/** Maintained by triggers on `archived_tasks` (migration 016): the number of archives, spread over slots. */
export interface ArchiveTotalsTable {
  slot: number;
  archives: number;
}

export interface Schema {
  projects: ProjectsTable;
  tasks: TasksTable;
  sessions: SessionsTable;
  users: UsersTable;
  audit_logs: AuditLogsTable;
  offline_queue: OfflineQueueTable;
  api_keys: ApiKeysTable;
  archived_tasks: ArchivedTasksTable;
  agents: AgentsTable;
  task_steps: TaskStepsTable;
  console_messages: ConsoleMessagesTable;
  permission_requests: PermissionRequestsTable;
  task_totals: TaskTotalsTable;
  slack_deliveries: SlackDeliveriesTable;
  task_plans: TaskPlansTable;
  cancel_requests: CancelRequestsTable;
  console_credentials: ConsoleCredentialsTable;
  task_costs: TaskCostsTable;
  archive_totals: ArchiveTotalsTable;
}
