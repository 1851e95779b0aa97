export * from './bot-registry.js';
export * from './bots.js';
export * from './command-parser.js';
export * from './model-routing.js';
export * from './types.js';
