import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of the cloud that can be turned into a black hole: bytes are dropped in both
 * directions and no FIN or RST reaches either side, as in a network partition (both ends must notice by
 * silence). A connection made while it is a black hole is accepted and never forwarded. `heal()` lets new
 * connections through again; ones cut off stay dead.
 */
export class BlackholeProxy {
  private holed = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.onConnection(client));
  }

  static async start(target: { host: string; port: number }): Promise<BlackholeProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new BlackholeProxy(server, target);
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy not listening');
    return address.port;
  }

  blackhole(): void {
    this.holed = true;
  }

  heal(): void {
    this.holed = false;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
  }

  private onConnection(client: Socket): void {
    this.track(client);
    if (this.holed) return; // accepted, never answered
    const upstream = createConnection(this.target);
    this.track(upstream);
    let cut = false;
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        if (this.holed) cut = true;
        if (!cut) to.write(chunk);
      });
      // Until the partition, a close is passed on; after it, the other side hears nothing.
      from.on('close', () => {
        if (this.holed) cut = true;
        if (!cut) to.destroy();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  }
}
