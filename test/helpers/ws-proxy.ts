import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a gateway: `cut()` drops every connection mid-stream,
 * as a network failure would (the client sees 1006, the server a reset), and `target` can be
 * pointed at another gateway to simulate a server restart.
 */
export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  cuts = 0;

  private constructor(
    private readonly server: Server,
    public target: number,
  ) {
    server.on('connection', (inbound) => {
      const outbound = connect(this.target, '127.0.0.1');
      const pair: [Socket, Socket] = [inbound, outbound];
      this.pairs.add(pair);
      const drop = (): void => {
        inbound.destroy();
        outbound.destroy();
        this.pairs.delete(pair);
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
  }

  static async start(target: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TcpProxy(server, target);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/ws'): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** Destroys every open connection at once. */
  cut(): void {
    this.cuts++;
    for (const [inbound, outbound] of this.pairs) {
      inbound.destroy();
      outbound.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
