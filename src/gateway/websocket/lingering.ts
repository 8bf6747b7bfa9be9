import type { WebSocket } from 'ws';

/** What `Lingering` needs of a connection. */
interface Owned {
  readonly userId: string;
  readonly socket: WebSocket;
}

/**
 * Sockets opened and not yet gone: served ones plus those the gateway is closing whose peer has
 * not answered the close frame yet. A peer that never answers would keep its socket for ws's
 * close timeout (30 s) while no longer counting as a connection: one token could then hold any
 * number of sockets by reconnecting in a loop (each new connection closes the oldest under
 * `close-oldest`). So past `maxPerUser` closing sockets of one user, the oldest are cut, and
 * `maxConnections` bounds `sockets` (file descriptors), not only served connections.
 */
export class Lingering {
  /** Sockets opened and not closed yet. */
  sockets = 0;
  private readonly closingByUser = new Map<string, Set<WebSocket>>();
  private onLastClosed: (() => void) | undefined;

  constructor(private readonly maxPerUser: number) {}

  opened(): void {
    this.sockets++;
  }

  /** The connection is closing: its socket lingers until the peer answers. */
  add(connection: Owned): void {
    let sockets = this.closingByUser.get(connection.userId);
    if (!sockets) this.closingByUser.set(connection.userId, (sockets = new Set()));
    sockets.add(connection.socket);
    for (const socket of sockets) {
      if (sockets.size <= this.maxPerUser) break;
      sockets.delete(socket);
      socket.terminate(); // its 'close' follows and calls closed()
    }
  }

  /** The socket is gone. */
  closed(connection: Owned): void {
    const sockets = this.closingByUser.get(connection.userId);
    if (sockets?.delete(connection.socket) && sockets.size === 0) this.closingByUser.delete(connection.userId);
    this.sockets--;
    if (this.sockets === 0) this.onLastClosed?.();
  }

  /** Resolves once every socket is gone. */
  allClosed(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.onLastClosed = resolve;
      if (this.sockets === 0) resolve();
    });
  }
}
