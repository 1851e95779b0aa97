export * from './command-service.js';
export * from './context.js';
export * from './decomposition.js';
export * from './execution-config.js';
export * from './inbound-pipeline.js';
export * from './slash/index.js';
