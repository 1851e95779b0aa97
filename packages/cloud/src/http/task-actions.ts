import type { ChatMessage, ChatSurface } from '../chat/chat-surface.js';
import type { InboundHandler, InboundRequest } from '../chat/inbound.js';
import type { Task } from '../db/repositories/types.js';
import type { ConsoleUser } from './console-api.js';

export const TASK_ACTIONS = ['retry', 'cancel', 'create_pr', 'archive'] as const;
export type TaskAction = (typeof TASK_ACTIONS)[number];

/**
 * The task page's buttons, sent through the same inbound pipeline (auth,
 * roles, audit) as Slack's buttons and slash commands: Retry and Cancel are
 * the task message's buttons, Create PR and Archive are `/bm pr` and
 * `/bm archive`. What the command layer answers the person is returned.
 */
export class TaskActions {
  constructor(
    private readonly inbound: InboundHandler,
    private readonly user: ConsoleUser,
    private readonly surfaceFor: (task: Task) => ChatSurface,
    private readonly now: () => number,
  ) {}

  async run(task: Task, action: TaskAction): Promise<{ messages: string[] }> {
    const messages: string[] = [];
    const shape: Pick<InboundRequest, 'kind' | 'text' | 'actionValue'> =
      action === 'retry'
        ? { kind: 'action', text: 'task_retry', actionValue: task.id }
        : action === 'cancel'
          ? { kind: 'action', text: 'task_cancel', actionValue: task.id }
          : action === 'create_pr'
            ? { kind: 'slash', text: `pr ${task.id}` }
            : { kind: 'slash', text: `archive ${task.id} archived from the dashboard` };
    const request: InboundRequest = {
      ...shape,
      surface: this.surfaceFor(task),
      userId: this.user.userId,
      userName: this.user.userName,
      channelId: task.channelId,
      threadTs: task.threadTs,
      messageTs: null,
      receivedAt: this.now(),
      respond: async (message: ChatMessage) => {
        messages.push(message.text);
      },
    };
    await this.inbound.handle(request);
    return { messages };
  }
}
