import type { PermissionRequest } from '@bematic/protocol';
import { describe, expect, it } from 'vitest';
import { ApprovalBroker } from './approval-broker.js';

const request = { tool: 'Bash', summary: 'git push', reason: 'approval_rule' as const };

function broker(send: (r: PermissionRequest) => Promise<void> = async () => {}) {
  let n = 0;
  const sent: PermissionRequest[] = [];
  const b = new ApprovalBroker({
    send: async (r) => {
      sent.push(r);
      await send(r);
    },
    newRequestId: () => `perm_${++n}`,
  });
  return { b, sent };
}

describe('ApprovalBroker', () => {
  it('resolves with the answer to its own request only', async () => {
    const { b, sent } = broker();
    const answer = b.ask('t1', request, new AbortController().signal, 2);
    expect(sent).toEqual([{ taskId: 't1', requestId: 'perm_1', attempt: 2, ...request }]);
    expect(b.answer({ taskId: 'other', requestId: 'perm_1', decision: 'approved' })).toBe(false);
    expect(b.answer({ taskId: 't1', requestId: 'perm_1', decision: 'approved_for_task' })).toBe(true);
    await expect(answer).resolves.toBe('approved_for_task');
    expect(b.answer({ taskId: 't1', requestId: 'perm_1', decision: 'denied' })).toBe(false);
    expect(b.waiting).toBe(0);
  });

  it('fails closed: unsendable, cancelled and disconnected requests are denied, nothing waits', async () => {
    const offline = broker(() => Promise.reject(new Error('not connected')));
    await expect(offline.b.ask('t1', request, new AbortController().signal)).resolves.toBe('undeliverable');

    const { b } = broker();
    const cancel = new AbortController();
    const cancelled = b.ask('t1', request, cancel.signal);
    const lost = b.ask('t2', request, new AbortController().signal);
    cancel.abort();
    await expect(cancelled).resolves.toBe('cancelled');
    b.denyAll('undeliverable');
    await expect(lost).resolves.toBe('undeliverable');
    expect(b.waiting).toBe(0);
    const aborted = new AbortController();
    aborted.abort();
    await expect(b.ask('t3', request, aborted.signal)).resolves.toBe('cancelled');
  });
});
