export * from './chat/chat-surface.js';
export * from './chat/inbound.js';
export * from './db/repositories/types.js';
export * from './gateway/types.js';
export * from './tasks/task-events.js';
export * from './tasks/task-state-machine.js';
export * from './db/index.js';
