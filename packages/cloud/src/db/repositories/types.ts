import type {
  McpServers,
  PermissionDecision,
  PermissionReason,
  SummedTaskMetrics,
  TaskMetrics,
  TaskPriority,
  TaskStatus,
  TaskSubmission,
  WorkspaceReport,
} from '@bematic/protocol';

/**
 * Repository contracts. Every implementation (SQLite and PostgreSQL through
 * the same Kysely code) must pass the conformance suite in db/conformance.
 * Timestamps are epoch milliseconds. JSON columns are parsed on read.
 */

export type Role = 'admin' | 'developer' | 'viewer';

export interface Project {
  id: string;
  name: string;
  channelId: string;
  /** Primary agent holding the checkout. */
  agentId: string;
  /** Other agents with the same checkout, used when the primary is offline or overloaded. */
  fallbackAgentIds: string[];
  localPath: string;
  defaultModel: string | null;
  maxBudgetUsd: number | null;
  /** The bot a mention in plain words goes to (a bot name or alias). */
  defaultBot: string;
  /** MCP servers offered to Claude Code for this project's tasks. */
  mcpServers: McpServers | null;
  createdAt: number;
  updatedAt: number;
}
export type NewProject = Omit<
  Project,
  'id' | 'createdAt' | 'updatedAt' | 'fallbackAgentIds' | 'defaultBot' | 'mcpServers'
> & {
  id?: string;
  fallbackAgentIds?: string[];
  defaultBot?: string;
  mcpServers?: McpServers | null;
};

/** A task row carries the wire's TaskMetrics as columns. */
export type TaskMetricsColumns = TaskMetrics;

export interface Task extends TaskMetricsColumns {
  id: string;
  projectId: string;
  agentId: string;
  botName: string;
  command: string;
  prompt: string;
  model: string;
  priority: TaskPriority;
  status: TaskStatus;
  userId: string;
  /** Where the conversation lives: Slack channel + thread, or a console thread. */
  channelId: string;
  threadTs: string | null;
  /** The user's own message (reactions go on it). */
  messageTs: string | null;
  /** The single progress message updated while the task runs. */
  progressMessageTs: string | null;
  sessionId: string | null;
  parentTaskId: string | null;
  /** The exact TASK_SUBMIT payload, so a task can be resent, retried or reconciled. */
  submission: TaskSubmission;
  result: string | null;
  errorMessage: string | null;
  errorCode: string | null;
  recoverable: boolean | null;
  warning: string | null;
  filesChanged: string[];
  commandsRun: string[];
  restoredFromArchive: string | null;
  restoredAt: number | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  completedAt: number | null;
  /** Where the task's changes are (branch, commit, diff stat), as its agent reported. */
  workspace: WorkspaceReport | null;
  /** The pull request opened from the task's branch. */
  pullRequestUrl: string | null;
  /** Which send of the task is in force: 0 before the first TASK_SUBMIT, then 1, 2, … (one per send). */
  attempt: number;
}

export type NewTask = Pick<
  Task,
  | 'projectId'
  | 'agentId'
  | 'botName'
  | 'command'
  | 'prompt'
  | 'model'
  | 'priority'
  | 'userId'
  | 'channelId'
  | 'submission'
> &
  Partial<
    Pick<
      Task,
      | 'id'
      | 'threadTs'
      | 'messageTs'
      | 'parentTaskId'
      | 'sessionId'
      | 'restoredFromArchive'
      | 'restoredAt'
      | 'status'
    >
  >;

/** Fields a transition may set alongside the new status. */
export type TaskPatch = Partial<
  Pick<
    Task,
    | 'agentId'
    | 'threadTs'
    | 'progressMessageTs'
    | 'sessionId'
    | 'result'
    | 'errorMessage'
    | 'errorCode'
    | 'recoverable'
    | 'warning'
    | 'filesChanged'
    | 'commandsRun'
    | 'startedAt'
    | 'completedAt'
    | 'workspace'
    | 'pullRequestUrl'
  > &
    TaskMetricsColumns
>;

export interface TransitionResult {
  /** false when the transition was an idempotent no-op (e.g. a duplicate TASK_COMPLETE) or stale. */
  changed: boolean;
  task: Task;
  /**
   * Set when a guarded transition was refused because the row belongs to another agent or another attempt
   * (the compare-and-set found no row). The task is returned as it is.
   */
  stale?: 'agent' | 'attempt';
}

/** Whose message a transition applies: it changes the row only if both still match. */
export interface AttemptGuard {
  agentId: string;
  attempt: number;
}

/** One task to start (TaskRepository.start): by its guard's agent and attempt, at `at`. */
export interface StartRequest {
  id: string;
  guard: AttemptGuard;
  at: number;
}

export interface TaskQuery {
  status?: TaskStatus | TaskStatus[];
  projectId?: string;
  agentId?: string;
  parentTaskId?: string;
  /** Only tasks created before this instant (epoch ms). */
  olderThan?: number;
  limit?: number;
}

export interface TaskRepository {
  create(task: NewTask): Promise<Task>;
  findById(id: string): Promise<Task | undefined>;
  /** The tasks among `ids` that exist, in no particular order: one statement. */
  findByIds(ids: readonly string[]): Promise<Task[]>;
  /** The most recent task whose conversation is this thread. */
  findByThread(channelId: string, threadTs: string): Promise<Task | undefined>;
  /** Newest first (createdAt desc). */
  list(query?: TaskQuery): Promise<Task[]>;
  countByStatus(): Promise<Record<TaskStatus, number>>;
  /**
   * Atomically check the state machine and apply. Same terminal status again → { changed: false }.
   * Illegal → throws IllegalTransitionError. Unknown id → throws.
   */
  transition(id: string, to: TaskStatus, patch?: TaskPatch, guard?: AttemptGuard): Promise<TransitionResult>;
  /**
   * → running with its session opened, in the usual case only: the row is in a status that may start and is
   * still the guard's agent and attempt. Null otherwise — judge that one with `transition` (a duplicate, a
   * stale or illegal message). Outside a transaction the starts of one tick share two statements.
   */
  start(id: string, guard: AttemptGuard, at: number): Promise<Task | null>;
  /**
   * The next send of the task to `agentId`: attempt + 1, agent_id and status `submitted` in one statement,
   * only while the task is pending, queued or submitted. Undefined when it is not (running, terminal, gone).
   */
  beginAttempt(
    id: string,
    agentId: string,
    outbox?: OutboxAttempt,
  ): Promise<{ task: Task; from: TaskStatus } | undefined>;
  /**
   * beginAttempt for many waiting tasks at once, each claiming its outbox row (`claim`): a few statements for
   * the whole batch, whatever its size. Only the tasks begun are returned, in the order asked, each with the
   * row it holds (its TASK_SUBMIT payload); a task not returned must not be sent by this caller.
   */
  beginAttempts(
    ids: readonly string[],
    agentId: string,
    at: number,
  ): Promise<Array<{ task: Task; from: TaskStatus; entry: OfflineQueueEntry }>>;
  /** Update non-status fields (e.g. progressMessageTs). */
  update(id: string, patch: TaskPatch): Promise<Task>;
  delete(id: string): Promise<boolean>;
}

export interface Session {
  id: string;
  taskId: string;
  claudeSessionId: string | null;
  status: 'active' | 'completed' | 'failed' | 'cancelled';
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  durationMs: number;
  createdAt: number;
  completedAt: number | null;
}
/** How a Claude session ended, with what it used. */
export interface SessionOutcome {
  status: Session['status'];
  claudeSessionId?: string | null;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  durationMs: number;
}
export interface SessionRepository {
  create(s: { taskId: string; claudeSessionId?: string | null }): Promise<Session>;
  /** Opens a session for each, in one statement; in the order given. */
  createMany(
    sessions: ReadonlyArray<{ taskId: string; claudeSessionId?: string | null }>,
  ): Promise<Session[]>;
  findByTask(taskId: string): Promise<Session[]>;
  complete(id: string, outcome: SessionOutcome): Promise<Session>;
  /**
   * Completes the task's open session (its first active one) in one statement; a null `claudeSessionId`
   * keeps the one it has. Undefined when the task has none open.
   */
  completeOpen(taskId: string, outcome: SessionOutcome): Promise<Session | undefined>;
}

export interface User {
  id: string;
  name: string | null;
  role: Role;
  /** The project this person's direct messages to the app work against. */
  defaultProjectId: string | null;
  createdAt: number;
  updatedAt: number;
}
export interface UserRepository {
  findById(id: string): Promise<User | undefined>;
  upsert(user: { id: string; name?: string | null; role: Role }): Promise<User>;
  setRole(id: string, role: Role): Promise<User>;
  setDefaultProject(id: string, projectId: string | null): Promise<User>;
  list(): Promise<User[]>;
}

export interface AuditEntry {
  id: number;
  ts: number;
  action: string;
  actor: string;
  resourceType: string | null;
  resourceId: string | null;
  details: Record<string, unknown>;
}
export type NewAuditEntry = Omit<AuditEntry, 'id' | 'ts' | 'resourceType' | 'resourceId' | 'details'> &
  Partial<Pick<AuditEntry, 'ts' | 'resourceType' | 'resourceId' | 'details'>>;
export interface AuditLogRepository {
  log(entry: NewAuditEntry): Promise<AuditEntry>;
  list(query?: {
    action?: string;
    resourceId?: string;
    actor?: string;
    limit?: number;
  }): Promise<AuditEntry[]>;
}

export interface OfflineQueueEntry {
  id: number;
  agentId: string;
  taskId: string;
  priority: TaskPriority;
  payload: TaskSubmission;
  enqueuedAt: number;
  expiresAt: number;
  attempts: number;
  lastAttemptAt: number | null;
}
export interface NewOfflineQueueEntry {
  agentId: string;
  taskId: string;
  priority: TaskPriority;
  payload: TaskSubmission;
  expiresAt: number;
  enqueuedAt?: number;
}

/**
 * The outbox side of a send, written in the same transaction as the task's new attempt, so that a dispatch is
 * one durable write: `write` a new (or re-targeted) row already counting this send, or `claim` the row waiting.
 */
export type OutboxAttempt =
  | {
      kind: 'write';
      entry: NewOfflineQueueEntry;
      at: number;
      /**
       * PostgreSQL: a NOTIFY issued in the same transaction once the attempt is known (delivered on commit,
       * with the row), e.g. handing the send to the instance holding the agent's socket.
       */
      notify?: (task: Task) => { channel: string; payload: string } | null;
    }
  | { kind: 'claim'; at: number };

export interface OfflineQueueRepository {
  /**
   * One row per task: enqueueing a task already queued replaces agent/payload/expiry. `attemptAt`: the row is
   * written for a send about to happen (attempts + 1).
   */
  enqueue(e: NewOfflineQueueEntry, attemptAt?: number): Promise<OfflineQueueEntry>;
  /**
   * Takes the task's row for one send to `agentId`: attempts + 1 and last attempt `at`. A row another
   * transaction holds is skipped (FOR UPDATE SKIP LOCKED on PostgreSQL), as is one for another agent or none:
   * undefined, and this caller must not send.
   */
  claim(taskId: string, agentId: string, at: number): Promise<OfflineQueueEntry | undefined>;
  /**
   * Takes the rows of these tasks for one send each to `agentId`, as `claim` does, in one statement; returns
   * the rows taken (any order).
   */
  claimMany(taskIds: readonly string[], agentId: string, at: number): Promise<OfflineQueueEntry[]>;
  /** The tasks waiting for the agent, in delivery order, without their payloads (a drain's to-do list). */
  taskIdsForAgent(agentId: string): Promise<string[]>;
  /**
   * Takes the row of an attempt another instance began (`attempt` already counted, task submitted to
   * `agentId` at that attempt) for its one send: last attempt `at`. One statement; a row another transaction
   * holds is skipped (SKIP LOCKED), as is one whose task moved on: undefined, and this caller must not send.
   */
  claimBegun(
    taskId: string,
    agentId: string,
    attempt: number,
    at: number,
  ): Promise<OfflineQueueEntry | undefined>;
  /** Priority order (urgent first), then oldest first. */
  listForAgent(agentId: string, limit?: number): Promise<OfflineQueueEntry[]>;
  /** The rows of these agents never sent, or last sent before `sentBefore`; in no particular order. */
  listUnsent(agentIds: readonly string[], sentBefore: number): Promise<OfflineQueueEntry[]>;
  findByTask(taskId: string): Promise<OfflineQueueEntry | undefined>;
  /** Which of `taskIds` have a row, for any agent (one statement per 500). */
  withRows(taskIds: readonly string[]): Promise<Set<string>>;
  removeByTask(taskId: string): Promise<boolean>;
  /** Removes and returns rows whose expiresAt <= now. */
  takeExpired(now: number): Promise<OfflineQueueEntry[]>;
  /** Queued tasks per agent: of every agent, or of the agents given. */
  countByAgent(agentIds?: readonly string[]): Promise<Record<string, number>>;
  /** Which of `agentIds` have at least one row waiting (one index probe each, not a scan of the queue). */
  agentsWithWaiting(agentIds: readonly string[]): Promise<string[]>;
}

export interface ApiKey {
  id: string;
  agentId: string;
  /** First characters of the key, safe to show (e.g. "bmk_3f9a"). */
  prefix: string;
  keyHash: string;
  label: string | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}
export interface ApiKeyRepository {
  create(k: Omit<ApiKey, 'id' | 'createdAt' | 'revokedAt' | 'lastUsedAt'> & { id?: string }): Promise<ApiKey>;
  findByPrefix(prefix: string): Promise<ApiKey[]>;
  list(agentId?: string): Promise<ApiKey[]>;
  revoke(id: string, at: number): Promise<boolean>;
  touch(id: string, at: number): Promise<void>;
}

export interface ArchivedTask {
  id: string;
  originalId: string;
  /** JSON snapshot of the Task row. */
  taskData: string;
  reason: string;
  metadata: Record<string, unknown>;
  archivedAt: number;
}
export interface ArchivedTaskRepository {
  create(
    a: Omit<ArchivedTask, 'id' | 'archivedAt'> & { id?: string; archivedAt?: number },
  ): Promise<ArchivedTask>;
  findById(id: string): Promise<ArchivedTask | undefined>;
  findByOriginalId(originalId: string): Promise<ArchivedTask | undefined>;
  list(limit?: number): Promise<ArchivedTask[]>;
  count(): Promise<number>;
  delete(id: string): Promise<boolean>;
}

/**
 * Whether an agent can take work now, as the instance holding its socket sees it: `healthy`, `overloaded`
 * (it said so, or refused a task as busy), `unreliable` (its circuit is not closed).
 */
export const AGENT_HEALTH = ['healthy', 'overloaded', 'unreliable'] as const;
export type AgentHealth = (typeof AGENT_HEALTH)[number];

/** What the holder writes with its presence claim, so routing on any instance can judge the agent. */
export interface AgentPresenceHealth {
  health: AgentHealth;
  /** Tasks the agent last reported running (null: not reported yet). */
  activeTasks: number | null;
  maxConcurrentTasks: number | null;
}

/** In the agent listing's order: online agents come first. */
export const AGENT_STATUSES = ['online', 'offline'] as const;

export interface AgentRecord {
  id: string;
  hostname: string | null;
  version: string | null;
  status: (typeof AGENT_STATUSES)[number];
  lastSeenAt: number | null;
  createdAt: number;
  /** The cloud instance holding the agent's socket, while one does. */
  instanceId: string | null;
  /** As the holder last wrote it; null when no instance holds the agent or it has not said. */
  health: AgentPresenceHealth | null;
}
/** A place in the agent listing, whose order is online agents first, then offline ones, each by id. */
export interface AgentPosition {
  online: boolean;
  id: string;
}

export interface AgentListingQuery {
  limit: number;
  status?: AgentRecord['status'];
  /** A piece of the id or host name, any case. */
  text?: string;
  /** Keyset: only agents strictly after this place. */
  after?: AgentPosition;
  /** A text search tests at most this many agents per status and request (default TEXT_SCAN_ROWS). */
  scanLimit?: number;
}

/** One page of the listing; `next` is where the next one starts (null: nothing after it). */
export interface AgentListingPage {
  rows: AgentRecord[];
  next: AgentPosition | null;
}

export interface AgentCounts {
  online: number;
  offline: number;
  total: number;
}

export interface AgentRepository {
  upsert(a: {
    id: string;
    hostname?: string | null;
    version?: string | null;
    status: AgentRecord['status'];
    lastSeenAt?: number;
  }): Promise<AgentRecord>;
  findById(id: string): Promise<AgentRecord | undefined>;
  list(): Promise<AgentRecord[]>;
  /** Every agent the cloud knows of (connected once, or a task waits for it), one page at a time. */
  page(q: AgentListingQuery): Promise<AgentListingPage>;
  counts(): Promise<AgentCounts>;
  /** The agent's socket is on `instanceId` and was heard from at `seenAt`, in the state `health`. */
  claim(id: string, instanceId: string, seenAt: number, health?: AgentPresenceHealth | null): Promise<void>;
  /** The agent left `instanceId` and is offline; a claim by another instance meanwhile is kept. */
  release(id: string, instanceId: string): Promise<void>;
  /** Agents held by instances that are gone are offline. Returns their ids. */
  releaseAllBut(liveInstanceIds: string[]): Promise<string[]>;
}

export interface ProjectRepository {
  create(p: NewProject): Promise<Project>;
  findById(id: string): Promise<Project | undefined>;
  findByChannel(channelId: string): Promise<Project | undefined>;
  list(): Promise<Project[]>;
  update(id: string, patch: Partial<Omit<Project, 'id' | 'createdAt' | 'updatedAt'>>): Promise<Project>;
  delete(id: string): Promise<boolean>;
}

export interface PermissionRequestRecord {
  /** The agent's requestId. */
  id: string;
  taskId: string;
  agentId: string;
  attempt: number | null;
  tool: string;
  summary: string;
  reason: PermissionReason;
  status: 'pending' | PermissionDecision;
  decidedBy: string | null;
  channelId: string | null;
  messageTs: string | null;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
}

export type NewPermissionRequest = Pick<
  PermissionRequestRecord,
  'id' | 'taskId' | 'agentId' | 'attempt' | 'tool' | 'summary' | 'reason' | 'expiresAt'
>;

export interface PermissionRequestRepository {
  /** Records a request; a duplicate id returns the stored one unchanged. */
  create(r: NewPermissionRequest): Promise<PermissionRequestRecord>;
  findById(id: string): Promise<PermissionRequestRecord | undefined>;
  setMessage(id: string, channelId: string, messageTs: string): Promise<void>;
  /** Pending → decided, once: undefined when it was no longer pending (someone else answered first). */
  decide(
    id: string,
    decision: PermissionDecision,
    decidedBy: string | null,
  ): Promise<PermissionRequestRecord | undefined>;
  /** Oldest first; `taskIds`: of any of these tasks. */
  listPending(filter?: {
    taskId?: string;
    taskIds?: readonly string[];
    agentId?: string;
  }): Promise<PermissionRequestRecord[]>;
}

export interface SlackDeliveryRepository {
  /** Records a delivery; false when that id was already recorded (a retry or a replay). */
  claim(id: string, kind: string): Promise<boolean>;
  /** Forgets a claim, so a retry of a delivery whose handling failed is handled again. */
  release(id: string): Promise<void>;
  /** Deletes deliveries received before `before` (ms); returns how many. */
  pruneBefore(before: number): Promise<number>;
}

export const PLAN_STATUSES = ['planning', 'proposed', 'running', 'done', 'cancelled'] as const;
export type PlanStatus = (typeof PLAN_STATUSES)[number];

export interface PlanStep {
  title: string;
  prompt: string;
  command?: string;
}

/** A decomposed request's plan, keyed by its planning task. */
export interface TaskPlan {
  taskId: string;
  /** The command the person asked for; a step without its own command runs as this one. */
  originalCommand: string;
  steps: PlanStep[];
  status: PlanStatus;
  /** The task it replaces (Plan first): that task was cancelled and its message became the plan's. */
  replacesTaskId: string | null;
  createdAt: number;
  updatedAt: number;
}

/** A cancel sent to the task's agent and not confirmed yet (any instance may finish it). */
export interface CancelRequest {
  taskId: string;
  reason: string;
  actor: string;
  requestedAt: number;
}

export interface CancelRequestRepository {
  /** Records (or renews) the user's cancel of the task. */
  put(taskId: string, reason: string, actor: string): Promise<void>;
  find(taskId: string): Promise<CancelRequest | undefined>;
  remove(taskId: string): Promise<boolean>;
}

/** What a console credential is: a one-time login token, or a signed-in browser's session id. */
export type ConsoleCredentialKind = 'login' | 'session';

/** Console sign-in credentials shared by every instance, held as SHA-256 hashes only. */
export interface ConsoleCredentialRepository {
  put(kind: ConsoleCredentialKind, hash: string, expiresAt: number): Promise<void>;
  /**
   * Removes the credential in one DELETE … RETURNING and says whether it was there and unexpired at `now`:
   * of two instances redeeming one login token at once, exactly one gets true.
   */
  consume(kind: ConsoleCredentialKind, hash: string, now: number): Promise<boolean>;
  /** The credential exists and expires after `now`. */
  isValid(kind: ConsoleCredentialKind, hash: string, now: number): Promise<boolean>;
  remove(kind: ConsoleCredentialKind, hash: string): Promise<boolean>;
  /** Deletes every credential expired at `now`; how many. */
  pruneExpired(now: number): Promise<number>;
}

export interface TaskPlanRepository {
  create(plan: { taskId: string; originalCommand: string }): Promise<TaskPlan>;
  /**
   * The Plan first button: a plan for `taskId` replacing `replacesTaskId`, in one insert that at most one
   * caller wins (on any instance): undefined when a plan replaces that task already.
   */
  claimReplacement(plan: {
    taskId: string;
    originalCommand: string;
    replacesTaskId: string;
  }): Promise<TaskPlan | undefined>;
  findByTask(taskId: string): Promise<TaskPlan | undefined>;
  /** The plan that replaced a task (Plan first), if any. */
  findByReplaced(taskId: string): Promise<TaskPlan | undefined>;
  /**
   * Moves the plan from one of `from` to `to` (with new steps, if given) in one conditional UPDATE:
   * undefined when it was not in `from`, so two clicks on Run plan start it once.
   */
  move(
    taskId: string,
    from: readonly PlanStatus[],
    to: PlanStatus,
    steps?: PlanStep[],
  ): Promise<TaskPlan | undefined>;
}

export interface Repositories {
  projects: ProjectRepository;
  tasks: TaskRepository;
  sessions: SessionRepository;
  users: UserRepository;
  audit: AuditLogRepository;
  offlineQueue: OfflineQueueRepository;
  apiKeys: ApiKeyRepository;
  archivedTasks: ArchivedTaskRepository;
  agents: AgentRepository;
  taskSteps: TaskStepRepository;
  taskSearch: TaskSearchRepository;
  consoleMessages: ConsoleMessageRepository;
  permissionRequests: PermissionRequestRepository;
  slackDeliveries: SlackDeliveryRepository;
  taskPlans: TaskPlanRepository;
  cancelRequests: CancelRequestRepository;
  consoleCredentials: ConsoleCredentialRepository;
  /** Run fn atomically; repositories passed in are bound to the transaction. */
  transaction<T>(fn: (repos: Omit<Repositories, 'transaction'>) => Promise<T>): Promise<T>;
}

/** One entry of a task's transcript, as the agent streamed it. */
export interface TaskStep {
  id: number;
  taskId: string;
  kind: 'started' | 'tool' | 'status' | 'continuation' | 'text' | 'plan';
  tool: string | null;
  message: string;
  /** Structured extras (e.g. a plan's items), when the agent sent them. */
  detail: Record<string, unknown> | null;
  createdAt: number;
}
export type NewTaskStep = Omit<TaskStep, 'id' | 'createdAt'> & { createdAt?: number };

export interface TaskStepRepository {
  append(step: NewTaskStep): Promise<TaskStep>;
  /** Add text to the task's last step when it is a text step; else start a new text step. */
  appendText(taskId: string, text: string): Promise<TaskStep>;
  /** Merge fields into the detail of the task's latest step whose detail.toolUseId matches; false if none. */
  mergeDetail(taskId: string, toolUseId: string, detail: Record<string, unknown>): Promise<boolean>;
  /** Oldest first. */
  list(taskId: string, limit?: number): Promise<TaskStep[]>;
}

/** A message of the web console, kept like a Slack thread. */
export interface StoredConsoleMessage {
  channelId: string;
  ts: string;
  threadTs: string | null;
  userId: string;
  text: string;
  blocks: unknown[] | null;
  reactions: string[];
  visibleTo: string | null;
  postedAt: number;
  editedAt: number | null;
}

export interface ConsoleMessageRepository {
  insert(message: StoredConsoleMessage): Promise<void>;
  update(
    ts: string,
    patch: Partial<Pick<StoredConsoleMessage, 'text' | 'blocks' | 'reactions' | 'editedAt'>>,
  ): Promise<boolean>;
  find(ts: string): Promise<StoredConsoleMessage | undefined>;
  /** The newest `maxReplies` replies of a thread, oldest first (through the channel's thread index). */
  replies(channelId: string, rootTs: string, maxReplies: number): Promise<StoredConsoleMessage[]>;
  /** The newest `limit` threads of a channel (oldest first), each with its replies. */
  recentThreads(
    channelId: string,
    limit: number,
    maxReplies: number,
  ): Promise<Array<{ root: StoredConsoleMessage; replies: StoredConsoleMessage[] }>>;
}

/** What the dashboard's task list filters by; every field optional. */
export interface TaskSearch {
  status?: TaskStatus[];
  projectId?: string;
  userId?: string;
  botName?: string;
  /** created_at >= from, < to (epoch ms) */
  from?: number;
  to?: number;
  /** Case-insensitive text in the request or the result. */
  text?: string;
  /** Keyset: only tasks strictly older than this (created_at, id) pair. */
  before?: { createdAt: number; id: string };
  limit: number;
  /** A text search tests at most this many of the newest rows in range (default TEXT_SCAN_ROWS). */
  scanLimit?: number;
}

/** One page of a search; `scannedTo` is set when a bounded text scan stopped before the page filled. */
export interface TaskSearchPage {
  rows: TaskListing[];
  /** The oldest row the text scan read: the next page resumes below it. */
  scannedTo: { createdAt: number; id: string } | null;
}

/** A task as a list shows it: no submission, result or reports, and `prompt` cut to its first 161 characters. */
export type TaskListing = Pick<
  Task,
  | 'id'
  | 'status'
  | 'projectId'
  | 'agentId'
  | 'botName'
  | 'command'
  | 'model'
  | 'priority'
  | 'userId'
  | 'channelId'
  | 'threadTs'
  | 'prompt'
  | 'inputTokens'
  | 'outputTokens'
  | 'cacheReadTokens'
  | 'cacheCreationTokens'
  | 'costUsd'
  | 'durationMs'
  | 'errorCode'
  | 'createdAt'
  | 'startedAt'
  | 'completedAt'
  | 'restoredFromArchive'
>;

export interface CostBucket {
  key: string;
  costUsd: number;
  tasks: number;
}

export interface TaskSearchRepository {
  /** Newest first, by (created_at, id). A `text` that is a task's id finds that task alone. */
  search(q: TaskSearch): Promise<TaskListing[]>;
  /** Like search, and says where a bounded text scan stopped. */
  searchPage(q: TaskSearch): Promise<TaskSearchPage>;
  /** Cost of tasks created since `since`, grouped by day (local to `tzOffsetMinutes`), project or user. */
  costs(by: 'day' | 'project' | 'user', since: number, tzOffsetMinutes?: number): Promise<CostBucket[]>;
  /** Task counts and sums per status and bot, from the maintained totals (never a scan of the history). */
  totals(): Promise<TaskTotals[]>;
}

export interface TaskTotals extends SummedTaskMetrics {
  status: TaskStatus;
  botName: string;
  tasks: number;
}
