export * from './agent-relay.js';
export * from './cache-bus.js';
export * from './cluster.js';
export * from './instance.js';
export * from './leader.js';
export * from './presence.js';
export * from './sqlite-lock.js';
