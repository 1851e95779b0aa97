/**
 * Child process for the connected-agents scenario: many raw protocol clients
 * that authenticate and answer HEARTBEAT_PING, kept out of the cloud's process
 * so the cloud's memory and CPU are measured alone. Driven over IPC.
 */
import {
  createMessage,
  type Message,
  type MessageType,
  type PayloadOf,
  parse,
  type ResourceMetrics,
  serialize,
} from '@bematic/protocol';
import { WebSocket } from 'ws';

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
  | { type: 'stats'; open: number; closed: number; pings: number }
  | { type: 'stopped' };

const METRICS: ResourceMetrics = {
  cpuPercent: 1,
  memoryPercent: 10,
  rssMb: 50,
  loadAvg1m: 0.1,
  activeTasks: 0,
  queuedTasks: 0,
};

const sockets = new Set<WebSocket>();
let closed = 0;
let pings = 0;

function send<T extends MessageType>(ws: WebSocket, type: T, payload: PayloadOf<T>): void {
  ws.send(serialize(createMessage(type, payload) as unknown as Message));
}

function connect(url: string, agent: SwarmAgent): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let authenticated = false;
    ws.on('open', () =>
      send(ws, 'AUTH_REQUEST', {
        agentId: agent.agentId,
        apiKey: agent.apiKey,
        agentVersion: 'bench',
        hostname: 'bench-swarm',
        maxConcurrentTasks: 1,
        activeTaskIds: [],
        bufferedTaskIds: [],
      }),
    );
    ws.on('message', (data) => {
      const r = parse(data as Buffer);
      if (!r.ok) return;
      const m = r.message;
      if (m.type === 'AUTH_RESPONSE') {
        const p = m.payload as PayloadOf<'AUTH_RESPONSE'>;
        if (p.success) {
          authenticated = true;
          sockets.add(ws);
          resolve();
        } else reject(new Error(p.error ?? 'auth refused'));
      } else if (m.type === 'HEARTBEAT_PING') {
        pings++;
        const p = m.payload as PayloadOf<'HEARTBEAT_PING'>;
        send(ws, 'HEARTBEAT_PONG', { seq: p.seq, sentAt: p.sentAt, metrics: METRICS });
      }
    });
    ws.on('error', (err) => {
      if (!authenticated) reject(err);
    });
    ws.on('close', () => {
      if (sockets.delete(ws)) closed++;
      if (!authenticated) reject(new Error('closed before authentication'));
    });
  });
}

async function connectAll(cmd: Extract<SwarmCommand, { type: 'connect' }>): Promise<SwarmReply> {
  const t0 = performance.now();
  let ok = 0;
  const errors: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cmd.agents.length) {
      const agent = cmd.agents[next++] as SwarmAgent;
      try {
        await connect(cmd.url, agent);
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
  else if (raw.type === 'stats') reply({ type: 'stats', open: sockets.size, closed, pings });
  else {
    for (const ws of sockets) ws.terminate();
    reply({ type: 'stopped' });
    process.disconnect?.();
    setImmediate(() => process.exit(0));
  }
});
// The parent going away must not leave the swarm running.
process.on('disconnect', () => process.exit(0));
