export * from './db/repositories/types.js';
export * from './tasks/task-state-machine.js';
