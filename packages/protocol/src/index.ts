export * from './clock.js';
export * from './constants.js';
export * from './envelope.js';
export * from './messages.js';
export * from './parse.js';
export * from './settings.js';
export * from './task-metrics.js';
export * from './task-state-machine.js';
