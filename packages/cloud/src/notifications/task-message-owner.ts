import type { ChatMessage } from '../chat/chat-surface.js';
import type { Task } from '../db/repositories/types.js';
import type { ProgressView } from './blocks.js';

export type { ProgressView };

/**
 * Someone who draws some tasks' one message instead of the usual progress and outcome blocks (a plan
 * draws its planning task's and its steps' into the plan message). Undefined: the usual block.
 */
export interface TaskMessageOwner {
  progress(task: Task, view: ProgressView): ChatMessage | undefined;
  /**
   * The task's last state of the message, as a renderer called when the update is sent (other tasks may
   * draw into the same message meanwhile, so it shows what is true then).
   */
  outcome(task: Task): Promise<(() => ChatMessage) | undefined>;
  /**
   * True when the task's message was handed to another task before it ended (Plan first: the cancelled
   * task's message became the plan's): the task's end neither updates that message nor reacts.
   */
  handedOver?(task: Task): Promise<boolean>;
  /**
   * Given the door for the owner's own redraws of a task's message (a plan edited or cancelled): through the
   * workspace's update scheduler, in order with the tasks' updates of that message; resolves true once landed.
   */
  useRedraw?(redraw: TaskMessageRedraw): void;
}

export type TaskMessageRedraw = (task: Task, render: () => ChatMessage) => Promise<boolean>;
