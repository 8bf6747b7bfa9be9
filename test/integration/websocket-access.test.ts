/**
 * Access on the WebSocket gateway after the handshake, seen by real clients over loopback:
 * `revoke(userId)` (4403), a principal's `expiresAt` (4401), a client with a token function
 * resuming through an expiry, the Node client's `Authorization` header, and connection failures
 * reported after construction without the token.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { AuthError, tokenFrom, validateLifecycle, type AgentwireError, type AuthRequest } from '../../src/index.js';
import { connect as connectBrowser } from '../../src/client/index.js';
import { connect as connectNode } from '../../src/client/node.js';
import { WebSocketGateway, type WebSocketGatewayOptions, type WebSocketPrincipal } from '../../src/transport/websocket/index.js';
import { useCleanup } from '../helpers/cleanup.js';
import { recordClient } from '../helpers/client-recorder.js';
import { RawClient, authenticate, follow, refusedStatus, startGateway, until, type GatewaySetupOptions } from '../helpers/ws-harness.js';

const cleanup = useCleanup();
async function gateway(options: GatewaySetupOptions = {}) {
  const harness = await startGateway(options);
  cleanup.push(() => harness.stop());
  return harness;
}
function followed(...args: Parameters<typeof follow>) {
  const followed = follow(...args);
  cleanup.push(() => followed.client.close());
  return followed;
}
async function raw(url: string, userId: string | undefined): Promise<RawClient> {
  const client = await RawClient.open(url, userId);
  cleanup.push(() => client.ws.terminate());
  return client;
}

/** Tokens `exp.<user>.<expiresAt>` carry their expiry; `token-<user>` (the harness's) none. */
const expiring = (userId: string, expiresAt: number): string => `exp.${userId}.${expiresAt}`;
const withExpiry: WebSocketGatewayOptions['authenticate'] = (request: AuthRequest): WebSocketPrincipal | null => {
  const token = tokenFrom(request);
  const match = /^exp\.([\w-]+)\.(\d+)$/.exec(token ?? '');
  if (match) return { userId: match[1]!, expiresAt: Number(match[2]) };
  return authenticate(request) as WebSocketPrincipal | null;
};

describe('revoke(userId)', () => {
  it('closes every connection of that user with 4403 without writing what was queued; real clients stop with AuthError REVOKED; others keep streaming', async () => {
    const { url, gateway: gw, agent, transport } = await gateway();
    const first = followed(url, 'alice', 'a-thread');
    const second = followed(url, 'alice', 'a-thread');
    const alice = await raw(url, 'alice');
    alice.subscribe('a-thread');
    const bob = followed(url, 'bob', 'b-thread');
    await until(() => [first, second, bob].every((f) => f.client.status === 'open') && alice.ofType('subscribed').length === 1, 'subscribed');

    // An event queued for alice in the same tick as the revocation is not written to her any more.
    const late = agent.run([{ think: 'after the revocation' }], { userId: 'alice', threadId: 'a-thread' });
    expect(gw.revoke('alice', 'revoked: ' + 'é'.repeat(300))).toBe(3);
    const closed = await alice.waitForClose();
    expect(closed.code).toBe(4403);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(closed.reason).toMatch(/^revoked: é+…$/);
    expect(alice.events()).toEqual([]); // the close frame came after anything that was written
    await until(() => first.client.status === 'closed' && second.client.status === 'closed', 'real clients stopped');
    for (const f of [first, second]) {
      expect(f.errors.map((e) => [e.code, e instanceof AuthError])).toEqual([['REVOKED', true]]);
      expect(f.events).toEqual([]);
      expect(f.client.stats.reconnects).toBe(0);
    }
    await late;

    const run = await agent.run([{ think: 'bob goes on' }, { tool: 'echo', args: { text: 'x' } }], { userId: 'bob', threadId: 'b-thread' });
    await until(() => bob.events.length === run.events, 'bob received his run');
    expect(bob.events.map((e) => e.id)).toEqual(transport.read('b-thread', 'bob').map((e) => e.id));
    expect(bob.errors).toEqual([]);
    expect(gw.stats()).toMatchObject({ closedRevoked: 3, connections: 1, users: 1 });
    expect(gw.revoke('nobody')).toBe(0);
  });

  it('refuses (401) a handshake of the user that was waiting for authenticate when revoke() was called', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { url, gateway: gw } = await gateway({
      authenticate: async (request) => {
        const principal = await authenticate(request);
        if (principal?.userId === 'alice' && request.headers.get('x-wait') === 'yes') await gate;
        return principal;
      },
    });
    const status = refusedStatus(`${url}?token=token-alice`, { 'x-wait': 'yes' });
    await until(() => gw.stats().pendingHandshakes === 1, 'handshake waiting');
    expect(gw.revoke('alice')).toBe(0);
    release();
    expect(await status).toBe(401);
    // Handshakes that start after the revocation are the hook's to decide (here: accepted).
    const again = await raw(url, 'alice');
    expect(again.frames[0]).toMatchObject({ type: 'hello', userId: 'alice' });
    expect(gw.stats()).toMatchObject({ rejectedUnauthorized: 1, connections: 1 });
  });
});

describe('principal expiry', () => {
  it('closes each connection with 4401 once its expiresAt has passed, not before; refuses an already expired principal with 401', async () => {
    const { url, gateway: gw, agent } = await gateway({ authenticate: withExpiry, maxConnectionsPerUser: 10 });
    const now = Date.now();
    const deadlines = [900, 300, 600, 200, 800, 400, 700, 500].map((ms) => now + ms);
    const clients = await Promise.all(deadlines.map((at) => raw(`${url}?token=${expiring('alice', at)}`, undefined)));
    clients.forEach((client) => client.subscribe('t'));
    const keeper = await raw(url, 'bob'); // no expiry
    keeper.subscribe('bt');
    await until(() => clients.every((c) => c.ofType('subscribed').length === 1), 'subscribed');
    // Events flow until the expiry.
    await agent.run([{ think: 'while valid' }], { userId: 'alice', threadId: 't' });
    await until(() => clients.every((c) => c.events().length === 3), 'events before the expiry');

    const closedAt = await Promise.all(clients.map((client) => client.waitForClose().then((close) => ({ close, at: Date.now() }))));
    closedAt.forEach(({ close, at }, i) => {
      expect(close.code).toBe(4401);
      expect(at).toBeGreaterThanOrEqual(deadlines[i]!);
    });
    expect(gw.stats()).toMatchObject({ closedExpired: 8, connections: 1 });
    expect(await refusedStatus(`${url}?token=${expiring('alice', Date.now() - 1)}`)).toBe(401);
    // A principal with a malformed expiry is refused too (fail closed).
    const malformed = await gateway({ authenticate: () => ({ userId: 'x', expiresAt: Number.NaN }) });
    expect(await refusedStatus(`${malformed.url}?token=a`)).toBe(401);
    expect(keeper.closed).toBeUndefined();
  });

  it('a real client with a fixed token stops with AuthError TOKEN_EXPIRED', async () => {
    const { url } = await gateway({ authenticate: withExpiry });
    const alice = followed(url, 'alice', 't', { token: expiring('alice', Date.now() + 300) });
    await until(() => alice.client.status === 'closed', 'closed');
    expect(alice.errors.map((e) => [e.code, e instanceof AuthError])).toEqual([['TOKEN_EXPIRED', true]]);
    expect(alice.statuses).toEqual(['connecting', 'open', 'closed']);
    expect(alice.client.stats.reconnects).toBe(0);
  });

  it('a real client with a token function fetches a fresh token on 4401 and resumes after its cursor: every event once, in order', async () => {
    const { url, gateway: gw, agent, burst, transport } = await gateway({ authenticate: withExpiry });
    const issued: number[] = [];
    const alice = followed(url, 'alice', 't', {
      token: async () => {
        const expiresAt = Date.now() + (issued.length === 0 ? 400 : 60_000);
        issued.push(expiresAt);
        return expiring('alice', expiresAt);
      },
    });
    await until(() => alice.client.status === 'open', 'open');
    await agent.run([{ think: 'first token' }], { userId: 'alice', threadId: 't' });
    await until(() => alice.statuses.includes('reconnecting'), 'the first token expired');
    // Events appended while the client is away are replayed after its cursor.
    const away = burst.run({ thoughts: 50 }, { userId: 'alice', threadId: 't' });
    await until(() => alice.statuses.at(-1) === 'open', 'open again');
    await away;
    await agent.run([{ think: 'second token' }], { userId: 'alice', threadId: 't' });
    const stored = transport.read('t', 'alice');
    await until(() => alice.events.length === stored.length, 'every event');
    expect(alice.events.map((e) => e.id)).toEqual(stored.map((e) => e.id));
    expect(validateLifecycle(alice.events)).toEqual({ ok: true, runs: 3 });
    expect(alice.errors).toEqual([]);
    expect(alice.client.stats).toMatchObject({ duplicates: 0, reconnects: 1 });
    expect(issued).toHaveLength(2);
    expect(gw.stats()).toMatchObject({ closedExpired: 1, connections: 1 });
  });
});

describe('tokens on the wire', () => {
  it('the Node client sends Authorization: Bearer and no token in the URL; the browser entry sends ?token= and no header', async () => {
    const seen: Array<{ url: string | undefined; authorization: string | undefined }> = [];
    const { url } = await gateway({
      authenticate: (request) => {
        seen.push({ url: request.url.pathname + request.url.search, authorization: request.headers.get('authorization') ?? undefined });
        return authenticate(request);
      },
    });
    const node = recordClient(connectNode(url, { threadId: 't', token: 'token-alice' }));
    cleanup.push(() => node.client.close());
    await until(() => node.client.status === 'open', 'node client open');
    expect(seen).toEqual([{ url: '/ws', authorization: 'Bearer token-alice' }]);
    expect(node.client.userId).toBe('alice');

    const fresh = recordClient(connectNode(url, { threadId: 't', token: async () => 'token-bob' }));
    cleanup.push(() => fresh.client.close());
    await until(() => fresh.client.status === 'open', 'token function client open');
    expect(seen[1]).toEqual({ url: '/ws', authorization: 'Bearer token-bob' });

    const browser = recordClient(connectBrowser(url, { threadId: 't', token: 'token-carol', WebSocket }));
    cleanup.push(() => browser.client.close());
    await until(() => browser.client.status === 'open', 'browser-entry client open');
    expect(seen[2]).toEqual({ url: '/ws?token=token-carol', authorization: undefined });
    expect([node, fresh, browser].flatMap((c) => c.errors)).toEqual([]);
  });

  it('reports connection failures after construction, never with the token in a message or a stack', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const { url } = await gateway();
    const secret = 'hunter2-s3cr3t-value'; // not a token the harness accepts
    const cases = [
      // ws refuses this URL in its constructor: reported on a later tick.
      connectNode(`ftp://127.0.0.1:${closedPort}/ws?token=${secret}`, { threadId: 't', token: secret }),
      connectBrowser(`ftp://127.0.0.1:${closedPort}/ws`, { threadId: 't', token: secret, WebSocket }),
      // Nobody listens: the attempts fail, then the client gives up.
      connectNode(`ws://127.0.0.1:${closedPort}/ws`, { threadId: 't', token: secret, reconnect: { initialDelayMs: 5, maxAttempts: 1 } }),
      connectBrowser(`ws://127.0.0.1:${closedPort}/ws`, { threadId: 't', token: secret, WebSocket, reconnect: { initialDelayMs: 5, maxAttempts: 1 } }),
      // The gateway refuses the token (HTTP 401).
      connectNode(url, { threadId: 't', token: secret }),
      connectBrowser(url, { threadId: 't', token: secret, WebSocket }),
    ];
    // Listeners attached after connect() returned see everything.
    const errors: AgentwireError[][] = cases.map((client) => {
      const seen: AgentwireError[] = [];
      client.on('error', (error) => seen.push(error));
      return seen;
    });
    await until(() => cases.every((client) => client.status === 'closed'), 'every client stopped');
    expect(errors.map((seen) => seen.map((e) => e.code))).toEqual([
      ['CONNECT_FAILED'],
      ['CONNECT_FAILED'],
      ['RECONNECT_FAILED'],
      ['RECONNECT_FAILED'],
      ['AUTH_FAILED'],
      ['AUTH_FAILED'],
    ]);
    const text = JSON.stringify(errors.flat().map((e) => [e.message, e.stack, e.details]));
    expect(text).not.toContain(secret);
    expect(text).not.toContain(encodeURIComponent(secret));
    expect(errors[0]![0]!.message).toContain('token=[redacted]');
  });
});
