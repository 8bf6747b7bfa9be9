import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunAgentInput } from '@ag-ui/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createAguiHandler } from '../../src/agui/index.js';
import { createChatHandler, type ChatRequest } from '../../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, type Authenticate } from '../../src/index.js';
import { ScriptedAgent, type Step } from '../helpers/agents.js';
import { Exchange, isLastFrame, stepsFrom, surfaceAuthenticate, type SurfaceKind } from '../helpers/run-surfaces.js';
import { until } from '../helpers/wait.js';

/**
 * A client that leaves while the auth hook is still running holds no connection slot once the
 * hook returns: its request is already destroyed, so its body can never end, and admission must
 * not wait for the body timeout (set to a minute here) to give the slot back. Found from outside:
 * a few thousand such requests locked every user out with 503 SERVER_AT_CAPACITY.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.each(['agui', 'chat'] as SurfaceKind[])('%s surface: a client gone during auth', (kind) => {
  it('gives its connection slot back as soon as the hook returns; the next user is served', async () => {
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const authenticate: Authenticate = async (request) => {
      if (request.headers.get('authorization') === 'Bearer tok-mallory') await gate;
      return surfaceAuthenticate(request);
    };
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const agent = new ScriptedAgent({ bridge });
    const common = { agent, log: transport, authenticate, heartbeatIntervalMs: 0, maxConnections: 3, bodyTimeoutMs: 60_000 };
    const handler =
      kind === 'agui'
        ? createAguiHandler<Step[]>({ ...common, toInput: (input: RunAgentInput) => stepsFrom((input.forwardedProps as { steps?: unknown } | undefined)?.steps) })
        : createChatHandler<Step[]>({ ...common, input: (request: ChatRequest) => stepsFrom(request.body.steps) });
    const closedOnServer: IncomingMessage[] = [];
    const server = createServer((req, res) => {
      req.on('close', () => closedOnServer.push(req));
      if (!handler.handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await handler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await bridge.close();
      await transport.close();
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${handler.path}`;
    const body = (threadId: string) =>
      JSON.stringify(
        kind === 'agui'
          ? { threadId, messages: [], forwardedProps: { steps: [{ think: 'hi' }] } }
          : { id: threadId, messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'go' }] }], trigger: 'submit-message', steps: [{ think: 'hi' }] },
      );
    const send = (token: string, threadId: string) => new Exchange(url, { headers: { Authorization: `Bearer ${token}` }, body: body(threadId) });

    const leaving = [0, 1, 2].map((i) => send('tok-mallory', `gone-${i}`));
    await until(() => handler.stats().connections.authenticating === 3, 'three requests in the auth hook');
    for (const x of leaving) x.destroy();
    // The server has seen every one of them go before the hook returns.
    await until(() => closedOnServer.length === 3, 'the server to see the three clients leave');
    openGate();
    await until(() => handler.stats().connections.authenticating === 0, 'the three slots back (long before the 60 s body timeout)', 5_000);

    const bystander = send('tok-bob', 'bob-1');
    await bystander.ended;
    expect(bystander.status).toBe(200);
    const last = JSON.parse(bystander.frames.at(-1)!.data === '[DONE]' ? '{"type":"[DONE]"}' : bystander.frames.at(-1)!.data) as Record<string, unknown>;
    expect(isLastFrame(kind, last)).toBe(true);
    // Nothing of mallory's abandoned requests started a run.
    expect(transport.read('gone-0', 'mallory')).toEqual([]);
  });
});
