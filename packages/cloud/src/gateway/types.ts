import type { AgentCounts, AgentListingQuery, AgentPosition, Task } from '../db/repositories/types.js';
import type { AgentSnapshot } from '../http/api-types.js';

/** What the command service needs from the gateway. */
export interface TaskDispatcher {
  /**
   * Durably queue the task's TASK_SUBMIT (outbox row written first) and send it
   * when its agent — or another healthy agent serving the same project path — is online.
   */
  dispatch(task: Task): Promise<DispatchResult>;
  /** Cancel wherever the task is: offline queue, agent queue, or running. */
  cancel(taskId: string, reason: string, actor: string): Promise<CancelResult>;
}

export interface DispatchResult {
  /** Agent that will run it. */
  agentId: string;
  /**
   * Sent on an open socket now (still awaiting TASK_ACK). Neither sent nor queued: the agent's socket is on
   * another instance, which was woken to send it.
   */
  sent: boolean;
  /** Left in the offline queue (agent offline, circuit open, or overloaded with no alternative). */
  queued: boolean;
  reason?: string;
  /** The chosen agent is connected (queued because it is busy, not because it is away). */
  agentOnline: boolean;
  /** Estimated time until the agent is back, when it is away. */
  reconnectEtaMs: number | null;
}

export type CancelResult =
  | { outcome: 'removed-from-queue' }
  | { outcome: 'sent-to-agent' }
  /** The agent holding the task is away: the task is cancelled now and the agent is told on reconnect. */
  | { outcome: 'cancelled-agent-offline' }
  | { outcome: 'already-terminal' }
  | { outcome: 'not-found' };

export type { AgentSnapshot } from '../http/api-types.js';

/** One page of the agent listing; `next` is where the next page starts (null: the last page). */
export interface AgentSnapshotPage {
  agents: AgentSnapshot[];
  next: AgentPosition | null;
}

export interface AgentDirectory {
  /** A page of every agent the cloud knows, online first and then by id, with its live state. */
  listAgents(q: AgentListingQuery): Promise<AgentSnapshotPage>;
  /** How many agents are online and offline, all of them. */
  countAgents(): Promise<AgentCounts>;
}
