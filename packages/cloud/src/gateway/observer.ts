import type { Clock } from '@bematic/protocol';

/** Optional timing hooks at the gateway's metrics collection points (MetricsCollector fits this shape). */
export interface GatewayObserver {
  /** WebSocket upgrade → successful authentication, in ms. */
  observeWsConnect?(ms: number): void;
  /** A message sent to an agent → the agent's answer to it, in ms (TASK_SUBMIT → TASK_ACK). */
  observeMessageRtt?(type: string, ms: number): void;
  /** An agent's message about a task was ignored: from an earlier attempt, or from an agent that lost the task. */
  observeStaleMessage?(type: string, reason: 'agent' | 'attempt'): void;
}

/** Bound on unanswered submits remembered, so tasks whose agent never answers cannot leak memory. */
const MAX_OUTSTANDING = 10_000;

/** Pairs each TASK_SUBMIT written to an agent with that agent's TASK_ACK for it. */
export class SubmitRoundTrips {
  private readonly sentAt = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly observer: GatewayObserver | undefined,
  ) {}

  /** A TASK_SUBMIT was written at `at`; a resend restarts the measurement. */
  sent(agentId: string, taskId: string, at: number): void {
    if (!this.observer?.observeMessageRtt) return;
    const key = keyOf(agentId, taskId);
    this.sentAt.delete(key);
    if (this.sentAt.size >= MAX_OUTSTANDING) {
      const oldest = this.sentAt.keys().next().value;
      if (oldest !== undefined) this.sentAt.delete(oldest);
    }
    this.sentAt.set(key, at);
  }

  acknowledged(agentId: string, taskId: string): void {
    const key = keyOf(agentId, taskId);
    const at = this.sentAt.get(key);
    if (at === undefined) return;
    this.sentAt.delete(key);
    this.observer?.observeMessageRtt?.('TASK_SUBMIT', Math.max(0, this.clock.now() - at));
  }
}

const keyOf = (agentId: string, taskId: string) => `${agentId}\u0000${taskId}`;
