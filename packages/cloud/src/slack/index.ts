export { boltLogger } from './bolt-logger.js';
export { createSlackApp, type SlackApp, type SlackAppOptions, TASK_ACTION_IDS } from './slack-app.js';
export { SlackChatSurface, slackErrorCode } from './slack-chat-surface.js';
export { stripBotMention } from './slack-inbound.js';
export * from './slack-manifest.js';
