export {
  ClaudeExecutor,
  type ClaudeExecutorOptions,
  CONTINUE_PROMPT,
  DEFAULT_MAX_TURNS,
  DEFAULT_TIMEOUT_MS,
  MAX_CONTINUATIONS,
} from './claude-executor.js';
export { mapModelError, redactSecrets } from './error-mapping.js';
export { describeToolUse } from './tool-steps.js';
