import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayStats } from '../stats.js';

/** What an HTTP surface that starts runs and streams them (AG-UI, useChat) offers: how it is mounted, watched, revoked and closed. */
export interface MountedRunSurface {
  /** The path `handle()` serves. */
  readonly path: string;
  /** The node handler: serves a request for its path and returns true; returns false (touching nothing) for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** The web-standard handler (Next.js route handlers, Hono, Bun, Deno), whatever the prefix the router mounted it at. */
  fetch(request: Request): Promise<Response>;
  /** Listens on its own `http.Server` (other paths get 404). Default port 0, host 127.0.0.1. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** The stats of every surface (`connections.open` = open streams). */
  stats(): GatewayStats;
  /** For `agentwire/metrics`: the same snapshot. */
  metrics(): GatewayStats;
  /** Ends the user's streams (with a final `REVOKED` error in the surface's own format) and cancels their runs; returns how many streams. */
  revoke(userId: string): number;
  /** Refuses new requests (503), cancels the runs it started (their streams end with the cancellation) and resolves once they ended. */
  close(): Promise<void>;
}
