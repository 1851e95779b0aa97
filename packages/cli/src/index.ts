export { LOCAL_AGENT_ID, LOCAL_CHANNEL, type LocalStack, startLocalStack } from './local/local-stack.js';
