export type { ExecutionOutcome, ExecutionSink, Executor } from './executor/executor.js';
export * from './executor/claude/index.js';
