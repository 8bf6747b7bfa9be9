/**
 * "No timers keep the process alive after close()", for the whole stack: a child process builds
 * an http.Server with a WebSocketGateway and an SseGateway over one MemoryTransport, AgentBridges
 * (one degraded with a recovery probe pending, one closed while an event waits for a retry), agents,
 * and real clients (WebSocket, SSE, one waiting to reconnect, one closed while connecting), uses
 * them, closes them, and must then exit by itself. Every timer it could leak is 30-60 s long, so a
 * leak shows as a process that does not exit before the guard kills it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { figures } from '../helpers/reliability-harness.js';

const fixture = fileURLToPath(new URL('../fixtures/exit-stack.ts', import.meta.url));

describe('resources after close()', () => {
  it('the whole stack, closed, leaves nothing that keeps the process alive', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // A guard, not a measurement: a process held by a leaked 30-60 s timer never exits before it.
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    clearTimeout(guard);
    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    const [summary, exit] = stdout.trim().split('\n');
    expect(JSON.parse(summary!)).toEqual({
      events: 32,
      wsReceived: 32,
      sseReceived: 32,
      // The degraded bridge's run finished (its events held), and close() reported them undelivered.
      degraded: { state: 'closed', runStatus: 'succeeded', failed: 7 },
      retried: 'UNDELIVERED',
      statuses: ['closed', 'closed', 'closed'],
    });
    expect(exit).toMatch(/^exited \d+ ms after the last close\(\)$/);
    figures('exit after close', { exit });
  });
});
