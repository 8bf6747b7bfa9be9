/**
 * `agentwire/client/node`: Node convenience for the client: `connect()` with `WebSocket` from `ws` filled in. Kept out of
 * the browser entry (`./index.js`) because it imports `ws`.
 *
 * @module agentwire/client/node
 */
import WebSocket from 'ws';
import { connect as connectWith, type AgentwireClient, type ConnectOptions } from './client.js';
import type { WebSocketConstructor } from './socket.js';

export * from './index.js';

/**
 * Like the browser `connect()`, with `ws` as the default `WebSocket`. Unlike a browser, `ws` can
 * set headers, so the token travels as `Authorization: Bearer <token>` (not in the URL, where
 * proxies and access logs would record it). With a `WebSocket` class of your own, the token goes
 * in `?token=` unless you set `tokenIn: 'header'` (your class must then accept `(url, { headers })`).
 */
export function connect(url: string, options: ConnectOptions): AgentwireClient {
  // Only undefined means the default: a null or 0 `WebSocket` / `tokenIn` goes to connect()'s checks (INVALID_OPTION).
  if (typeof options !== 'object' || options === null || options.WebSocket !== undefined) return connectWith(url, options);
  return connectWith(url, { ...options, tokenIn: options.tokenIn === undefined ? 'header' : options.tokenIn, WebSocket: WebSocket satisfies WebSocketConstructor });
}
