/**
 * A throwing abort listener must not crash the process on `bridge.close()`. Node rethrows what an
 * `EventTarget` listener throws (or rejects with) on `process.nextTick`, as an uncaught exception,
 * so a listener the agent's code put on `ctx.signal` used to end the process when close() aborted
 * the run. The child process (test/fixtures/abort-listener-close.ts) has no 'uncaughtException'
 * handler: it exits 0 only if nothing escaped. Over a real WebSocketGateway on loopback, what the
 * clients of both users received must show both runs cancelled with every tool call closed, and
 * each hostile listener reported once as `listener_error` `LISTENER_FAILED` for the run it was on.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('../fixtures/abort-listener-close.ts', import.meta.url));

describe('bridge.close() with hostile abort listeners on a run signal', () => {
  it('the process survives, close() finishes, every run ends cancelled for its client, each throw is reported', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // A guard against a hang, not a measurement.
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    clearTimeout(guard);
    // Before the fix: code 1, stderr "Error: listener boom" thrown from node:internal/event_target's nextTick.
    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    const summary = JSON.parse(stdout.trim()) as {
      bridge: string;
      results: string[];
      alice: string[];
      bob: string[];
      listenerErrors: number;
      reported: Array<{ code: string; message: string; cause: string; runId: string }>;
      runIds: string[];
    };
    const lifecycle = ['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed:failed', 'agent_completed:cancelled'];
    expect(summary).toMatchObject({ bridge: 'closed', results: ['cancelled', 'cancelled'], alice: lifecycle, bob: lifecycle, listenerErrors: 5 });
    const [aliceRun] = summary.runIds;
    expect(summary.reported).toEqual(
      ['async listener boom', 'handleEvent boom', 'listener boom', 'onabort boom', 'tool listener boom'].map((cause) => ({
        code: 'LISTENER_FAILED',
        message: `An abort listener of run ${aliceRun} threw: ${cause}`,
        cause,
        runId: aliceRun,
      })),
    );
  });
});
