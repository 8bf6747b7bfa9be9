/**
 * The WebSocket gateway attached to the HTTP servers TypeScript users run on Node: a hono app
 * served by @hono/node-server and an express app. The app keeps its routes; the gateway takes
 * the upgrades on its path. Assertions are on what the real clients received.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import express from 'express';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { MemoryTransport, generateRunId } from '../../src/index.js';
import { WebSocketGateway } from '../../src/gateway/websocket/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { useCleanup } from '../helpers/cleanup.js';
import { RawClient, authenticate, refusedStatus } from '../helpers/ws-harness.js';

const cleanup = useCleanup();

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The app's own route answers, and a subscribed client receives an event sent through the gateway. */
async function exercise(server: Server, gateway: WebSocketGateway): Promise<void> {
  const { port } = server.address() as AddressInfo;
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  expect([health.status, await health.text()]).toEqual([200, 'ok']);

  const client = await RawClient.open(`ws://127.0.0.1:${port}/ws`, 'alice');
  cleanup.push(() => client.ws.terminate());
  client.subscribe('t1');
  await client.waitFor(() => client.ofType('subscribed').length === 1, 'subscribed');
  const emitter = new RunEmitter({ runId: generateRunId('t1'), threadId: 't1', userId: 'alice', agent: 'a' });
  const event = emitter.emit('agent_started', { metadata: {} }).event;
  await gateway.send(event);
  await client.waitFor(() => client.events().length === 1, 'the event');
  expect(client.events()[0]!.id).toBe(event.id);
  // Without a token the upgrade is refused before a socket opens.
  expect(await refusedStatus(`ws://127.0.0.1:${port}/ws`)).toBe(401);
}

describe('WebSocketGateway attached to an app server', () => {
  it('hono (@hono/node-server): the app serves its routes, the gateway its upgrades', async () => {
    const app = new Hono();
    app.get('/health', (c) => c.text('ok'));
    const log = new MemoryTransport();
    const gateway = new WebSocketGateway({ authenticate, log, path: '/ws' });
    let server: Server | undefined;
    await new Promise<void>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve()) as Server;
    });
    gateway.attach(server!);
    cleanup.push(() => log.close(), () => closeServer(server!), () => gateway.close());
    await exercise(server!, gateway);
  });

  it('express: the app serves its routes, the gateway its upgrades', async () => {
    const app = express();
    app.get('/health', (_req, res) => {
      res.type('text/plain').send('ok');
    });
    const log = new MemoryTransport();
    const gateway = new WebSocketGateway({ authenticate, log, path: '/ws' });
    const server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    gateway.attach(server);
    cleanup.push(() => log.close(), () => closeServer(server), () => gateway.close());
    await exercise(server, gateway);
  });
});
