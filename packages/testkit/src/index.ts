export * from './github-emulator/github-emulator.js';
export * from './manual-clock.js';
export * from './model-server/index.js';
export * from './raw-agent.js';
export * from './secrets.js';
export * from './slack-budget.js';
export * from './slack-emulator/index.js';
export * from './system.js';
