/**
 * The WebSocket gateway of `agentwire/gateway/websocket` on the front-end contract: the shared
 * option names (`log`, `allowedOrigins`, `userLimitPolicy`), the origin policy checked before the
 * upgrade, and the contract's stats shape that `agentwire/metrics` reads as is.
 */
import { describe, expect, it } from 'vitest';
import { MemoryTransport, generateRunId } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/gateway/websocket/index.js';
import { websocketGatewayMetrics } from '../../src/metrics/gateway-metrics.js';
import { useCleanup } from '../helpers/cleanup.js';
import { RawClient, authenticate, refusedStatus, tokenOf } from '../helpers/ws-harness.js';

const cleanup = useCleanup();
const APP = 'https://app.example.com';

async function start(options: Partial<WebSocketGatewayOptions> = {}) {
  const log = new MemoryTransport();
  const gateway = new WebSocketGateway({ authenticate, log, allowedOrigins: [APP], ...options });
  const { url } = await gateway.listen(0, '127.0.0.1');
  cleanup.push(() => log.close(), () => gateway.close());
  return { log, gateway, url };
}

async function open(url: string, userId: string, origin?: string): Promise<RawClient> {
  const client = await RawClient.open(url, userId, origin === undefined ? {} : { headers: { Origin: origin } });
  cleanup.push(() => client.ws.terminate());
  return client;
}

describe('WebSocketGateway on the front-end contract', () => {
  it('refuses an upgrade from an origin that is not allowed with 403 before opening a socket; serves allowed and non-browser ones', async () => {
    const { gateway, url } = await start();
    expect(await refusedStatus(`${url}?token=${tokenOf('alice')}`, { Origin: 'https://evil.example' })).toBe(403);
    // The gateway's own host over the other scheme is another origin (the same-origin pass needs
    // scheme and Host to match): served over ws:, so https://<host> is refused, http://<host> served.
    const host = new URL(url).host;
    expect(await refusedStatus(`${url}?token=${tokenOf('alice')}`, { Origin: `https://${host}` })).toBe(403);
    const sameOrigin = await open(url, 'carol', `http://${host}`);
    expect(sameOrigin.ofType('hello')).toHaveLength(1);
    const fromApp = await open(url, 'alice', APP);
    const noOrigin = await open(url, 'bob');
    expect(fromApp.ofType('hello')).toHaveLength(1);
    expect(noOrigin.ofType('hello')).toHaveLength(1);
    const stats = gateway.stats();
    expect(stats).toMatchObject({ connections: { open: 3, authenticating: 0 }, users: 3, refused: { origin_forbidden: 2 } });
    // The contract's shape is a metrics snapshot as is.
    expect(websocketGatewayMetrics(gateway).metrics()).toMatchObject({ connections: { open: 3 }, refused: { origin_forbidden: 2 } });
  });

  it('reads and appends to the `log` it is given; counts refusals and disconnects by reason', async () => {
    const { gateway, url, log } = await start({ maxConnectionsPerUser: 1, userLimitPolicy: 'refuse-newest' });
    const alice = await open(url, 'alice');
    alice.subscribe('t1');
    await alice.waitFor(() => alice.ofType('subscribed').length === 1, 'subscribed');
    const emitter = new RunEmitter({ runId: generateRunId('t1'), threadId: 't1', userId: 'alice', agent: 'a' });
    await gateway.send(emitter.emit('agent_started', { metadata: {} }).event);
    await alice.waitFor(() => alice.events().length === 1, 'the event');
    expect(log.read('t1', 'alice')).toHaveLength(1);

    const second = await RawClient.connect(`${url}`, 'alice');
    cleanup.push(() => second.ws.terminate());
    expect(await second.waitForClose()).toMatchObject({ code: 4029 });
    expect(gateway.revoke('alice')).toBe(1);
    expect(await alice.waitForClose()).toMatchObject({ code: 4403 });
    expect(gateway.stats()).toMatchObject({ refused: { too_many_connections: 1 }, disconnects: { revoked: 1 }, connections: { open: 0 } });
  });
});
