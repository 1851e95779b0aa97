import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { now } from '../harness.js';

/**
 * The physical floor of any WebSocket hop on this machine: round trips of
 * `payload` to a raw `ws` echo server on loopback, one at a time.
 */
export async function wsEchoRoundTrips(payload: string, count: number, warmup = 50): Promise<number[]> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  server.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    const samples: number[] = [];
    for (let i = 0; i < warmup + count; i++) {
      const echoed = new Promise<void>((resolve) => client.once('message', () => resolve()));
      const t0 = now();
      client.send(payload);
      await echoed;
      if (i >= warmup) samples.push(now() - t0);
    }
    return samples;
  } finally {
    client.terminate();
    for (const ws of server.clients) ws.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
