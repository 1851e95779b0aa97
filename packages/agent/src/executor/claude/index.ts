export {
  ClaudeExecutor,
  type ClaudeExecutorOptions,
  CONTINUE_PROMPT,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_MAX_TURNS,
  MAX_CONTINUATIONS,
} from './claude-executor.js';
export {
  allowListedEnv,
  type ConfinementPolicy,
  confineTask,
  DEFAULT_CONFINEMENT,
  type TaskConfinement,
  type TaskScope,
} from './confinement.js';
export { mapModelError } from './error-mapping.js';
export { createPermissionGate, physicalPath, summarize } from './permissions.js';
export { detectSandbox, SANDBOX_HOW_TO, type SandboxSupport, sandboxUnavailable } from './sandbox.js';
export { describeToolUse } from './tool-steps.js';
