export * from './model-server/index.js';
