/**
 * The part of the WebSocket API the client uses. Both the browser's `WebSocket` and the `ws`
 * package's class fit it. Handler parameters are `never` so that either one's event types are
 * accepted; the client reads only `data`, `code` and `reason` from them.
 */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: the browser's global, or `WebSocket` from the `ws` package in Node. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface MessageEventLike {
  data: unknown;
}

export interface CloseEventLike {
  code: number;
  reason: string;
}

export interface ErrorEventLike {
  message?: string;
  error?: unknown;
}

/** `WebSocket.OPEN` (the same value in every implementation). */
export const OPEN = 1;

/** The given class, else the global one; throws a clear error where there is neither (Node 20). */
export function resolveWebSocket(given: WebSocketConstructor | undefined): WebSocketConstructor {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return global;
  throw new TypeError(
    'agentwire client: no global WebSocket here; pass one: connect(url, { WebSocket }) with `import WebSocket from "ws"`, or use agentwire/client/node',
  );
}
