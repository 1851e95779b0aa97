import { type Clock, KeyedSequence, type TimerHandle } from '@bematic/protocol';
import type { Logger } from 'pino';
import type { AgentPresenceHealth, AgentRepository } from '../db/repositories/types.js';
import type { TaskEvents } from '../tasks/task-events.js';
import type { LeaderJob } from './leader.js';

/**
 * Writes to the agents table which instance holds each agent's socket: claimed
 * on connect and again on every heartbeat (which also records when it was last
 * heard from), released on disconnect unless another instance claimed it since.
 * Each claim carries the agent's health as `health` tells it (healthy,
 * overloaded, unreliable; how full), written again whenever that may have
 * changed (its status report, its circuit, its health as the holder judges it), so routing on other instances
 * knows whether it can take work. One agent's writes land in order.
 */
export function trackPresence(opts: {
  events: TaskEvents;
  agents: AgentRepository;
  instanceId: string;
  clock: Clock;
  logger: Logger;
  /** The agent's health as this instance sees it (AgentManager.presenceOf); without it, none is written. */
  health?: (agentId: string) => AgentPresenceHealth | null;
}): () => void {
  const { agents, instanceId } = opts;
  const writes = new KeyedSequence();
  const inOrder = (agentId: string, write: () => Promise<void>) => {
    writes
      .run(agentId, write)
      .catch((err: unknown) => opts.logger.warn({ err, agentId }, 'agent presence not recorded'));
  };
  const claim = ({ agentId }: { agentId: string }) => {
    inOrder(agentId, () => {
      const health = opts.health?.(agentId);
      // Not here any more (went offline meanwhile): the release is next in line.
      if (opts.health && health === null) return Promise.resolve();
      return agents.claim(agentId, instanceId, opts.clock.now(), health);
    });
  };
  const offs = [
    opts.events.on('agent.online', claim),
    opts.events.on('agent.heartbeat', claim),
    opts.events.on('agent.status', claim),
    opts.events.on('circuit.changed', claim),
    // E.g. a refusal as busy, which marks the agent overloaded before it reports its status.
    opts.events.on('agent.health', claim),
    opts.events.on('agent.offline', ({ agentId }) => {
      inOrder(agentId, () => agents.release(agentId, instanceId));
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/**
 * The leader's job: agents still marked as held by an instance that is gone
 * (killed, its database session ended) are offline.
 */
export function deadInstanceSweep(opts: {
  agents: AgentRepository;
  liveInstances: () => Promise<string[]>;
  intervalMs: number;
  clock: Clock;
  logger: Logger;
  onReleased?: (agentIds: string[]) => void;
}): LeaderJob & { sweep(): Promise<string[]> } {
  let timer: TimerHandle | null = null;
  const sweep = async () => {
    const live = await opts.liveInstances();
    const released = await opts.agents.releaseAllBut(live);
    if (released.length > 0) {
      opts.logger.info({ agents: released, live }, 'agents of instances that are gone marked offline');
      opts.onReleased?.(released);
    }
    return released;
  };
  const run = () => {
    sweep().catch((err: unknown) => opts.logger.warn({ err }, 'dead-instance sweep failed'));
  };
  return {
    sweep,
    start: () => {
      run();
      timer = opts.clock.setInterval(run, opts.intervalMs);
    },
    stop: () => {
      if (timer !== null) opts.clock.clearInterval(timer);
      timer = null;
    },
  };
}
