/**
 * The one raw protocol client of the benchmark: a WebSocket that authenticates as an agent, answers
 * HEARTBEAT_PING and hands every other frame (parsed and validated) to the caller. No queue, no executor:
 * what the bench clients measure is the cloud. Every frame goes through `parse` on receive and
 * `serialize` (which validates) on send, as in the real agent.
 */
import {
  type AuthResponse,
  createMessage,
  type Message,
  type MessageType,
  type PayloadOf,
  parse,
  type ResourceMetrics,
  serialize,
} from '@bematic/protocol';
import { WebSocket } from 'ws';

const METRICS: ResourceMetrics = {
  cpuPercent: 1,
  memoryPercent: 10,
  rssMb: 50,
  loadAvg1m: 0.1,
  activeTasks: 0,
  queuedTasks: 0,
};

export interface RawAgentOptions {
  url: string;
  agentId: string;
  apiKey: string;
  hostname?: string;
  maxConcurrentTasks?: number;
  /** Source address on loopback (127.0.0.x): each one has its own ephemeral port range. */
  localAddress?: string;
  /** Every frame after authentication except HEARTBEAT_PING. */
  onMessage?: (message: Message, agent: RawAgent) => void;
  onPing?: () => void;
  onClose?: () => void;
}

export class RawAgent {
  authenticatedAt = 0;

  constructor(readonly ws: WebSocket) {}

  send<T extends MessageType>(type: T, payload: PayloadOf<T>): void {
    this.ws.send(serialize(createMessage(type, payload) as unknown as Message));
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** Connects and authenticates; resolves once the cloud accepted the key, rejects on refusal or close. */
export function connectRawAgent(opts: RawAgentOptions): Promise<RawAgent> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(opts.url, opts.localAddress ? { localAddress: opts.localAddress } : {});
    const agent = new RawAgent(ws);
    let authenticated = false;
    ws.on('open', () =>
      agent.send('AUTH_REQUEST', {
        agentId: opts.agentId,
        apiKey: opts.apiKey,
        agentVersion: 'bench',
        hostname: opts.hostname ?? 'bench',
        maxConcurrentTasks: opts.maxConcurrentTasks ?? 1,
        activeTaskIds: [],
        bufferedTaskIds: [],
      }),
    );
    ws.on('message', (data) => {
      const r = parse(data as Buffer);
      if (!r.ok) return;
      const m = r.message;
      if (m.type === 'HEARTBEAT_PING') {
        opts.onPing?.();
        const p = m.payload as PayloadOf<'HEARTBEAT_PING'>;
        agent.send('HEARTBEAT_PONG', { seq: p.seq, sentAt: p.sentAt, metrics: METRICS });
      } else if (m.type === 'AUTH_RESPONSE') {
        const p = m.payload as AuthResponse;
        if (!p.success) {
          ws.terminate();
          reject(new Error(p.error ?? 'auth refused'));
          return;
        }
        authenticated = true;
        agent.authenticatedAt = performance.now();
        resolve(agent);
      } else if (authenticated) opts.onMessage?.(m, agent);
    });
    ws.on('error', (err) => {
      if (!authenticated) reject(err);
    });
    ws.on('close', () => {
      if (!authenticated) reject(new Error('closed before authentication'));
      else opts.onClose?.();
    });
  });
}
