import { describe, expect, it } from 'vitest';
import { createMessage } from './envelope.js';
import { AGENT_TASK_MESSAGE_TYPES, CLOUD_ONLY_TYPES, isAgentTaskMessage } from './message-kinds.js';

describe('message kinds', () => {
  it('derives the agent messages about a task from the sender table and the schemas', () => {
    expect([...AGENT_TASK_MESSAGE_TYPES].sort()).toEqual(
      [
        'PERMISSION_REQUEST',
        'TASK_ACK',
        'TASK_CANCELLED',
        'TASK_COMPLETE',
        'TASK_ERROR',
        'TASK_PROGRESS',
        'TASK_STREAM',
        'WORKSPACE_RESULT',
      ].sort(),
    );
    expect([...CLOUD_ONLY_TYPES].sort()).toEqual(
      [
        'AUTH_RESPONSE',
        'PERMISSION_RESPONSE',
        'TASK_CANCEL',
        'TASK_RESULT_ACK',
        'TASK_SUBMIT',
        'WORKSPACE_COMMAND',
      ].sort(),
    );
  });

  it('tells an agent task message from the rest', () => {
    const stream = createMessage('TASK_STREAM', { taskId: 't1', attempt: 1, seq: 0, text: 'x' });
    const cancel = createMessage('TASK_CANCEL', { taskId: 't1', attempt: 1, reason: 'r' });
    const ping = createMessage('HEARTBEAT_PING', { seq: 1, sentAt: 1 });
    expect(isAgentTaskMessage(stream)).toBe(true);
    expect(isAgentTaskMessage(cancel)).toBe(false);
    expect(isAgentTaskMessage(ping)).toBe(false);
  });
});
