export * from './blocks.js';
export * from './format.js';
export * from './mrkdwn.js';
export * from './notification-service.js';
export * from './retry-after.js';
export * from './stream-accumulator.js';
export * from './truncate.js';
export * from './update-scheduler.js';
