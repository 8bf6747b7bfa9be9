import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Serves `handler` on a loopback port; pushes its closing (connections cut) onto `stops`; returns its base URL. */
export async function listenHttp(handler: (req: IncomingMessage, res: ServerResponse) => void, stops: { push(step: () => Promise<void>): unknown }): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stops.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
