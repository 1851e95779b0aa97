export * from './auth.js';
export * from './logging.js';
export * from './permissions.js';
export * from './pipeline.js';
export * from './project.js';
export * from './rate-limit.js';
export * from './types.js';
