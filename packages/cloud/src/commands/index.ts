export * from './command-service.js';
export * from './decomposition.js';
export * from './help.js';
export * from './inbound-pipeline.js';
export * from './retention.js';
export * from './slash-commands.js';
