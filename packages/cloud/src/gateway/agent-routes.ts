import type { Message } from '@bematic/protocol';
import type { AgentRelay, TransactionalNotice } from '../cluster/agent-relay.js';
import type { AgentRecord, AgentRepository, Task } from '../db/repositories/types.js';
import type { AgentManager } from './agent-manager.js';

/**
 * Where an agent is reached from this instance: its socket here, or the instance that holds it according to
 * presence (agents.instance_id), through the relay.
 */
export class AgentRoutes {
  constructor(
    private readonly opts: {
      manager: AgentManager;
      agents: AgentRepository;
      relay: AgentRelay;
      /** This instance's id in agents.instance_id; absent: a single process. */
      instanceId?: string;
    },
  ) {}

  /** The other instance holding the agent's socket, or null (here, or nowhere). */
  async holderElsewhere(agentId: string): Promise<string | null> {
    return (await this.presenceElsewhere(agentId))?.instanceId ?? null;
  }

  /**
   * The agent's presence row when another instance holds its socket (that instance, and the agent's health
   * as it last wrote it), else null.
   */
  async presenceElsewhere(agentId: string): Promise<(AgentRecord & { instanceId: string }) | null> {
    if (this.opts.manager.isConnected(agentId)) return null;
    const record = await this.opts.agents.findById(agentId);
    const holder = record?.instanceId ?? null;
    return record && holder !== null && holder !== this.opts.instanceId
      ? { ...record, instanceId: holder }
      : null;
  }

  async heldElsewhere(agentId: string): Promise<boolean> {
    return (await this.holderElsewhere(agentId)) !== null;
  }

  /** Writes the frame to the agent wherever its socket is. False when no instance holds it. */
  async send(agentId: string, message: Message): Promise<boolean> {
    if (this.opts.manager.isConnected(agentId)) return this.opts.manager.sendToAgent(agentId, message);
    if (!(await this.heldElsewhere(agentId))) return false;
    return this.opts.relay.forward(agentId, message);
  }

  /** The notice handing a begun attempt to the instance holding the agent, for the dispatch transaction. */
  submitNotice(agentId: string, task: Pick<Task, 'id' | 'attempt'>): TransactionalNotice | null {
    return this.opts.relay.submitNotice(agentId, task.id, task.attempt);
  }
}
