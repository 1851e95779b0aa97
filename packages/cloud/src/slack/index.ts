export { boltLogger } from './bolt-logger.js';
export {
  createSlackApp,
  type SlackApp,
  type SlackAppOptions,
  slackUpdateClient,
  TASK_ACTION_IDS,
} from './slack-app.js';
export { SLACK_CHANNEL_INTERVAL_MS, SlackChatSurface, slackErrorCode } from './slack-chat-surface.js';
export { stripBotMention } from './slack-inbound.js';
export * from './slack-manifest.js';
