/**
 * Run endpoints: credentials that expire while the POST body is still arriving queue nothing
 * (fourth attack round: AG-UI and useChat started such a run; the run endpoints share the rule).
 */
import { request as httpRequest, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentBridge, MemoryTransport } from '../../src/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { MemoryRunQueue } from '../../src/runs/index.js';
import { StepAgent } from '../helpers/runs-agents.js';
import { until } from '../helpers/wait.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe('run endpoints: expiry while the body arrives', () => {
  it('401 TOKEN_EXPIRED once the body is read; nothing is queued and the log holds nothing', async () => {
    let expiresAt = 0;
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const queue = new MemoryRunQueue();
    queue.serve({ agents: [new StepAgent({ bridge })] }, { concurrency: 1 });
    const handler = new RunsHandler({ queue, authenticate: () => ({ userId: 'alice', expiresAt }), agents: ['steps'] });
    const server: Server = createServer((req, res) => {
      void handler.handle(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      await queue.close({ timeoutMs: 50 });
      await bridge.close();
      await new Promise((resolve) => server.close(resolve));
    });
    const body = JSON.stringify({ agent: 'steps', input: { steps: 1, stepMs: 1 }, threadId: 'late' });
    expiresAt = Date.now() + 100;
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `http://127.0.0.1:${(server.address() as AddressInfo).port}/runs`,
        { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Authorization: 'Bearer t' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 5));
      void until(() => Date.now() > expiresAt, 'the credentials expired').then(() => req.end(body.slice(5)));
    });
    const { status, body: text } = await answer;
    expect(status).toBe(401);
    expect((JSON.parse(text) as { error: { code: string } }).error.code).toBe('TOKEN_EXPIRED');
    expect((await queue.stats()).submitted).toBe(0);
    expect(transport.read('late', 'alice')).toEqual([]);
  });
});
