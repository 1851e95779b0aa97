export type { SlackIdentity } from './identity.js';
export type { EnforcedLimit, RateLimitRule } from './rate-limits.js';
export { blocksToText, blockToLines, type SlackBlock } from './render.js';
export type { AttachedFile } from './shared-files.js';
export { encodeHttpPayload, signSlackRequest } from './signing.js';
export {
  type CallRecord,
  type ClickButtonArgs,
  type Delivered,
  type DeliveredInteraction,
  type DeliveredMessage,
  type HttpDeliveryOptions,
  type HttpDeliveryResult,
  type MentionArgs,
  type MessageArgs,
  type MessageView,
  SlackEmulator,
  type SlackEmulatorOptions,
  type SlashCommandArgs,
  startSlackEmulator,
} from './slack-emulator.js';
export { type Ack, AckTimeoutError, type EnvelopeType } from './socket-mode.js';
export type { EphemeralMessage, OpenedView, SlackUser } from './workspace.js';
