import type { Clock, TimerHandle } from '@bematic/protocol';
import type { Logger } from 'pino';
import type { AgentRepository } from '../db/repositories/types.js';
import type { TaskEvents } from '../tasks/task-events.js';
import type { LeaderJob } from './leader.js';

/**
 * Writes to the agents table which instance holds each agent's socket: claimed
 * on connect and again on every heartbeat (which also records when it was last
 * heard from), released on disconnect unless another instance claimed it since.
 */
export function trackPresence(opts: {
  events: TaskEvents;
  agents: AgentRepository;
  instanceId: string;
  clock: Clock;
  logger: Logger;
}): () => void {
  const { agents, instanceId } = opts;
  const log = (agentId: string) => (err: unknown) =>
    opts.logger.warn({ err, agentId }, 'agent presence not recorded');
  const claim = ({ agentId }: { agentId: string }) => {
    agents.claim(agentId, instanceId, opts.clock.now()).catch(log(agentId));
  };
  const offs = [
    opts.events.on('agent.online', claim),
    opts.events.on('agent.heartbeat', claim),
    opts.events.on('agent.offline', ({ agentId }) => {
      agents.release(agentId, instanceId).catch(log(agentId));
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
