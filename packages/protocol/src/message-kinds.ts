import type { Message } from './envelope.js';
import { MESSAGE_TYPES, type MessageType, PAYLOAD_SCHEMAS, type PayloadOf } from './messages.js';

/** Who sends each message type. A new type must say it here (the record is checked to be complete). */
export const MESSAGE_SENDERS = {
  AUTH_REQUEST: 'agent',
  AUTH_RESPONSE: 'cloud',
  HEARTBEAT_PING: 'both',
  HEARTBEAT_PONG: 'both',
  TASK_SUBMIT: 'cloud',
  TASK_ACK: 'agent',
  TASK_PROGRESS: 'agent',
  TASK_STREAM: 'agent',
  TASK_COMPLETE: 'agent',
  TASK_ERROR: 'agent',
  TASK_CANCEL: 'cloud',
  TASK_CANCELLED: 'agent',
  TASK_RESULT_ACK: 'cloud',
  AGENT_STATUS: 'agent',
  SYSTEM_SHUTDOWN: 'both',
  SYSTEM_ERROR: 'both',
  WORKSPACE_COMMAND: 'cloud',
  WORKSPACE_RESULT: 'agent',
  PERMISSION_REQUEST: 'agent',
  PERMISSION_RESPONSE: 'cloud',
} as const satisfies Record<MessageType, 'agent' | 'cloud' | 'both'>;

/** Message types only the cloud sends: an agent sending one is confused or hostile. */
export const CLOUD_ONLY_TYPES: readonly MessageType[] = MESSAGE_TYPES.filter(
  (t) => MESSAGE_SENDERS[t] === 'cloud',
);

/** Message types an agent sends about one task: their payload carries the task id (read from the schemas). */
export type AgentTaskMessageType = {
  [T in MessageType]: (typeof MESSAGE_SENDERS)[T] extends 'cloud'
    ? never
    : PayloadOf<T> extends { taskId: string }
      ? T
      : never;
}[MessageType];

/** The same, at run time: derived from the sender table and from which payload schemas have a `taskId`. */
export const AGENT_TASK_MESSAGE_TYPES: readonly AgentTaskMessageType[] = MESSAGE_TYPES.filter(
  (t): t is AgentTaskMessageType => MESSAGE_SENDERS[t] !== 'cloud' && 'taskId' in PAYLOAD_SCHEMAS[t].shape,
);

const agentTask: ReadonlySet<MessageType> = new Set(AGENT_TASK_MESSAGE_TYPES);

/** An agent's message about one task (TASK_ACK … TASK_CANCELLED, PERMISSION_REQUEST, WORKSPACE_RESULT). */
export function isAgentTaskMessage(message: Message): message is Message<AgentTaskMessageType> {
  return agentTask.has(message.type);
}
