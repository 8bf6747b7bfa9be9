/**
 * A gateway process: serves WebSocket clients from Redis. Any number of these can run side by
 * side; a client may connect to any of them and resume on another with its last cursor.
 *
 * Environment: REDIS_URL (default redis://127.0.0.1:6379), AGENTWIRE_KEY_PREFIX (default
 * `agentwire:`), PORT (default 0: a free port), GATEWAY_NAME (shown in the output).
 * Prints `{"type":"listening","url":…}` once it accepts connections. SIGTERM/SIGINT: clean shutdown.
 */
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { demoAuthenticate } from './auth.js';

const name = process.env.GATEWAY_NAME ?? `gateway-${process.pid}`;
// The transport is the gateway's event log here: replay with XRANGE, live tail with one blocking XREAD per process.
const transport = new RedisStreamsTransport({ url: process.env.REDIS_URL, keyPrefix: process.env.AGENTWIRE_KEY_PREFIX });
const gateway = new WebSocketGateway({ transport, authenticate: demoAuthenticate });
const address = await gateway.listen(Number(process.env.PORT ?? 0));
console.log(JSON.stringify({ type: 'listening', name, url: address.url, pid: process.pid }));

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await gateway.close();
  await transport.close();
  console.log(JSON.stringify({ type: 'closed', name }));
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
