export * from './blocks.js';
export * from './format.js';
export * from './mrkdwn.js';
export * from './notification-service.js';
export * from './stream-accumulator.js';
export * from './timers.js';
export * from './truncate.js';
