/** The JSON the cloud's API answers with (see docs/http-api.md): the cloud's own types, erased at build. */

import type { TaskDetail } from '../../cloud/src/http/api-types.js';

export type { TaskStatus } from '@bematic/protocol';
export type {
  AuditEntry,
  CostBucket,
  Project,
  TaskStep,
} from '../../cloud/src/db/repositories/types.js';
export type {
  AgentPage,
  AgentSnapshot,
  ConsoleChange,
  ConsoleMessage,
  ConsoleThread,
  DashboardStats,
  SessionInfo,
  TaskDetail,
  TaskPage,
  TaskSummary,
} from '../../cloud/src/http/api-types.js';

/** A task as the task page gets it (everything but the submission payload). */
export type Task = TaskDetail['task'];

/** Block Kit as the console renders it: the fields the dashboard reads of a block. */
export interface TextObject {
  type: 'plain_text' | 'mrkdwn';
  text: string;
}
export interface BlockElement {
  type: string;
  /** A text object on buttons; the text itself on context elements. */
  text?: TextObject | string;
  action_id?: string;
  value?: string;
  style?: 'primary' | 'danger';
  url?: string;
  alt_text?: string;
}
export interface Block {
  type: string;
  text?: TextObject | string;
  fields?: TextObject[];
  accessory?: BlockElement;
  elements?: BlockElement[];
}
