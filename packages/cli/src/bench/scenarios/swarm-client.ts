/**
 * Child process for the connected-agents scenario: many raw protocol clients
 * (the testkit's RawAgent) that authenticate and answer HEARTBEAT_PING, kept
 * out of the cloud's process so the cloud's memory and CPU are measured alone.
 * Several of these run at once. Driven over IPC.
 */
import { RawAgent } from '@bematic/testkit';

export interface SwarmAgent {
  agentId: string;
  apiKey: string;
}

export type SwarmCommand =
  | { type: 'connect'; url: string; agents: SwarmAgent[]; concurrency: number }
  | { type: 'stats' }
  | { type: 'stop' };

export type SwarmReply =
  | { type: 'connected'; ok: number; failed: number; errors: string[]; ms: number }
  | { type: 'stats'; open: number; closed: number }
  | { type: 'stopped' }
  | { type: 'failed'; error: string };

const sockets = new Set<RawAgent>();
let closed = 0;

async function connectAll(cmd: Extract<SwarmCommand, { type: 'connect' }>): Promise<SwarmReply> {
  const t0 = performance.now();
  let ok = 0;
  const errors: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cmd.agents.length) {
      const { agentId, apiKey } = cmd.agents[next++] as SwarmAgent;
      try {
        const agent = await RawAgent.accepted(
          cmd.url,
          { agentId, apiKey, agentVersion: 'bench', hostname: 'bench-swarm', maxConcurrentTasks: 1 },
          { answerPings: true },
        );
        void agent.closed.then(() => {
          if (sockets.delete(agent)) closed++;
        });
        sockets.add(agent);
        ok++;
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: cmd.concurrency }, worker));
  return {
    type: 'connected',
    ok,
    failed: errors.length,
    errors: [...new Set(errors)].slice(0, 5),
    ms: performance.now() - t0,
  };
}

function isCommand(value: unknown): value is SwarmCommand {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  if (type === 'stats' || type === 'stop') return true;
  const c = value as { url?: unknown; agents?: unknown; concurrency?: unknown };
  return (
    type === 'connect' &&
    typeof c.url === 'string' &&
    Array.isArray(c.agents) &&
    typeof c.concurrency === 'number'
  );
}

const reply = (r: SwarmReply) => process.send?.(r);

process.on('message', (raw: unknown) => {
  if (!isCommand(raw)) return;
  if (raw.type === 'connect') void connectAll(raw).then(reply);
  else if (raw.type === 'stats') reply({ type: 'stats', open: sockets.size, closed });
  else {
    for (const agent of sockets) void agent.terminate();
    reply({ type: 'stopped' });
    process.disconnect?.();
    setImmediate(() => process.exit(0));
  }
});
// The parent going away must not leave the swarm running.
process.on('disconnect', () => process.exit(0));
