export { AGENT_VERSION, Agent, type AgentEvents, type AgentOptions } from './agent.js';

export { ApprovalBroker, type ApprovalBrokerOptions } from './approvals/approval-broker.js';
export {
  AGENT_SETTINGS,
  type AgentConfig,
  AgentConfigError,
  agentWsUrl,
  claudeExecutorSettingsOf,
  confinementOf,
  loadAgentConfig,
} from './config.js';
export { Backoff, type BackoffOptions, type Jitter } from './connection/backoff.js';
export {
  CloudConnection,
  type CloudConnectionOptions,
  type ConnectionState,
} from './connection/cloud-connection.js';
export { OutboundBuffer, type OutboundTransport } from './connection/outbound-buffer.js';
export { TerminalStore } from './connection/terminal-store.js';
export * from './executor/claude/index.js';
export type { ApprovalRequest, ExecutionOutcome, ExecutionSink, Executor } from './executor/executor.js';
export { SleepExecutor, type SleepExecutorOptions } from './executor/sleep-executor.js';
export { ProcessLedger } from './process/process-ledger.js';
export {
  newRunTag,
  type ProcessRun,
  processStartTime,
  RUN_TAG_VAR,
  runMembers,
  stopRun,
} from './process/process-tree.js';
export { QueueProcessor, type QueueProcessorOptions, type TaskOutcomeKind } from './queue/queue-processor.js';
export {
  createOsSampler,
  DEFAULT_CPU_WINDOW_MS,
  describeOverload,
  type OverloadDetail,
  ResourceMonitor,
  type ResourceMonitorOptions,
  type ResourceSample,
  type ResourceStatusChange,
  type Sampler,
  type Threshold,
} from './resources/resource-monitor.js';
export { type PathValidation, PathValidator } from './security/path-validator.js';
export { StreamCoalescer, type StreamCoalescerOptions } from './streaming/stream-coalescer.js';
export { type GitHubAccess, WorkspaceActions } from './workspace/workspace-actions.js';
export {
  isWritingTask,
  type Workspace,
  WorkspaceError,
  WorkspaceManager,
  type WorkspaceManagerOptions,
  type WorkspacePlan,
} from './workspace/workspace-manager.js';
