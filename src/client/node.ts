/**
 * Node convenience for the client: `connect()` with `WebSocket` from `ws` filled in. Kept out of
 * the browser entry (`./index.js`) because it imports `ws`.
 */
import WebSocket from 'ws';
import { connect as connectWith, type AgentwireClient, type ConnectOptions } from './client.js';
import type { WebSocketConstructor } from './socket.js';

export * from './index.js';

/** Like the browser `connect()`, with `ws` as the default `WebSocket`. */
export function connect(url: string, options: ConnectOptions): AgentwireClient {
  return connectWith(url, { ...options, WebSocket: options.WebSocket ?? (WebSocket satisfies WebSocketConstructor) });
}
