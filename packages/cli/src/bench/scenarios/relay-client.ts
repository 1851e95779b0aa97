/**
 * Child process for the dispatch scenario's baseline: a bare HTTP → WebSocket relay (an HTTP handler that
 * only forwards the request body over an open WebSocket) with its HTTP client and its WebSocket client, all
 * in this process, which times POST → frame received. In its own process so the figure is the machine's
 * floor under the same load, not the cloud's event loop. Driven over IPC.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

export type RelayCommand = { type: 'sample'; body: string } | { type: 'stop' };
export type RelayReply =
  | { type: 'ready' }
  | { type: 'sample'; ms: number }
  | { type: 'failed'; error: string };

const reply = (r: RelayReply) => process.send?.(r);

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
const upstream = new Promise<WebSocket>((resolve) => wss.once('connection', (ws) => resolve(ws)));
const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
await new Promise<void>((resolve, reject) => {
  client.once('open', () => resolve());
  client.once('error', reject);
});
const ws = await upstream;
const http = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    ws.send(Buffer.concat(chunks));
    res.writeHead(202).end();
  });
});
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;

async function sample(body: string): Promise<number> {
  const got = new Promise<number>((resolve) => client.once('message', () => resolve(performance.now())));
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  return (await got) - t0;
}

function stop(): void {
  client.terminate();
  for (const c of wss.clients) c.terminate();
  wss.close();
  http.closeAllConnections();
  http.close();
  process.disconnect?.();
  setImmediate(() => process.exit(0));
}

process.on('message', (cmd: RelayCommand) => {
  if (cmd?.type === 'sample' && typeof cmd.body === 'string')
    sample(cmd.body).then(
      (ms) => reply({ type: 'sample', ms }),
      (err: Error) => reply({ type: 'failed', error: err.message }),
    );
  else if (cmd?.type === 'stop') stop();
});
process.on('disconnect', () => process.exit(0));
reply({ type: 'ready' });
