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
  outcome(task: Task): Promise<ChatMessage | undefined>;
}
