import type { PermissionDecision, PermissionReason } from '@bematic/protocol';
import type { ChatBlock, ChatMessage } from '../chat/chat-surface.js';
import type { PermissionRequestRecord } from '../db/repositories/types.js';
import { escapeMrkdwn } from '../notifications/mrkdwn.js';
import { truncateText } from '../notifications/truncate.js';

/** Button action ids of an approval request; the button value is the request id. */
export const APPROVAL_ACTION_IDS = {
  approve: 'permission_approve',
  approveForTask: 'permission_approve_task',
  deny: 'permission_deny',
} as const;
export type ApprovalActionId = (typeof APPROVAL_ACTION_IDS)[keyof typeof APPROVAL_ACTION_IDS];
export const APPROVAL_ACTIONS: readonly ApprovalActionId[] = Object.values(APPROVAL_ACTION_IDS);

export const isApprovalAction = (id: string): id is ApprovalActionId =>
  (APPROVAL_ACTIONS as readonly string[]).includes(id);

export const DECISION_OF_ACTION: Record<ApprovalActionId, PermissionDecision> = {
  permission_approve: 'approved',
  permission_approve_task: 'approved_for_task',
  permission_deny: 'denied',
};

/** Inline code that survives any backticks in what is shown. */
const code = (text: string): string => `\`${escapeMrkdwn(truncateText(text, 1500)).replace(/`/g, 'ˋ')}\``;

/** "Claude wants to run: `npm install left-pad`", worded for what is asked. */
export function askLine(r: Pick<PermissionRequestRecord, 'tool' | 'summary' | 'reason'>): string {
  const what: Record<PermissionReason, string> = {
    unsandboxed_command: `Claude wants to run *outside the sandbox*: ${code(r.summary)}`,
    network: `Claude wants a command to reach ${code(r.summary)}`,
    approval_rule:
      r.tool === 'Bash'
        ? `Claude wants to run: ${code(r.summary)}`
        : `Claude wants to use ${code(r.summary)}`,
    no_sandbox: `Claude wants to run (this agent has no sandbox): ${code(r.summary)}`,
    other: `Claude wants to use ${code(r.summary)}`,
  };
  return what[r.reason];
}

const button = (text: string, actionId: string, value: string, style?: 'primary' | 'danger') => ({
  type: 'button',
  text: { type: 'plain_text', text },
  action_id: actionId,
  value,
  ...(style ? { style } : {}),
});

/** The question in the thread, with its three buttons. */
export function approvalRequestMessage(r: PermissionRequestRecord, requesterId: string): ChatMessage {
  const line = askLine(r);
  const blocks: ChatBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `:raised_hand: ${line}` } },
    {
      type: 'actions',
      block_id: `permission:${r.id}`,
      elements: [
        button('Approve', APPROVAL_ACTION_IDS.approve, r.id, 'primary'),
        button('Approve for this task', APPROVAL_ACTION_IDS.approveForTask, r.id),
        button('Deny', APPROVAL_ACTION_IDS.deny, r.id, 'danger'),
      ],
    },
    {
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `<@${requesterId}> or an admin can answer · Task \`${r.taskId}\`` }],
    },
  ];
  return { text: line.replace(/[*`]/g, ''), blocks };
}

const OUTCOME: Record<PermissionDecision, (by: string | null) => string> = {
  approved: (by) => `:white_check_mark: Approved${by ? ` by <@${by}>` : ''}`,
  approved_for_task: (by) => `:white_check_mark: Approved for this task${by ? ` by <@${by}>` : ''}`,
  denied: (by) => `:no_entry_sign: Denied${by ? ` by <@${by}>` : ''}`,
  timed_out: () => ':hourglass: Nobody answered in time, so it was denied',
  cancelled: () => ':no_entry_sign: The task ended before anyone answered',
  undeliverable: () =>
    ':electric_plug: The agent could no longer be asked (connection lost or restart), so it was denied',
};

/** The same message once answered: the question stays, the buttons give way to who decided what. */
export function approvalDecidedMessage(
  r: PermissionRequestRecord,
  decision: PermissionDecision,
): ChatMessage {
  const line = askLine(r);
  const outcome = OUTCOME[decision](r.decidedBy);
  return {
    text: `${line.replace(/[*`]/g, '')}: ${outcome.replace(/:[a-z_]+: /, '')}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `:raised_hand: ${line}` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${outcome} · Task \`${r.taskId}\`` }] },
    ],
  };
}

/** The line the progress message shows while the task waits. */
export const waitingLine = (r: Pick<PermissionRequestRecord, 'tool' | 'summary' | 'reason'>): string =>
  `Waiting for your approval: ${r.tool === 'SandboxNetworkAccess' ? `network access to ${r.summary}` : r.summary}`;
