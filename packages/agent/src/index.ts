export type { ExecutionOutcome, ExecutionSink, Executor } from './executor/executor.js';
