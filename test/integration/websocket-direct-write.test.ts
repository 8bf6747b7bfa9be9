import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { FlushScheduler } from '../../src/gateway/websocket/flush-scheduler.js';
import { Outbox, frameHeader } from '../../src/gateway/websocket/outbox.js';
import { WebSocketStatsRecorder } from '../../src/gateway/websocket/stats.js';
import { eventFrameJson } from '../../src/gateway/websocket/server-frames.js';
import { MemoryTransport, generateRunId, type AgentEvent } from '../../src/index.js';
import { useCleanup } from '../helpers/cleanup.js';
import { until } from '../helpers/ws-harness.js';

const cleanup = useCleanup();

interface Pair {
  server: WebSocket;
  client: WebSocket;
  received: Array<{ text: string; binary: boolean }>;
  /** Calls of ws's own framing on the server side (frames that did not take the direct write). */
  viaWs: () => number;
}

/** A real server-side ws WebSocket (as the gateway's server makes them) and a client reading it. */
async function pair(): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false });
  const received: Pair['received'] = [];
  client.on('message', (data, binary) => received.push({ text: String(data), binary }));
  await new Promise<void>((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  const server = await accepted;
  cleanup.push(async () => {
    client.terminate();
    server.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  const sender = (server as unknown as { _sender: { sendFrame: (...args: unknown[]) => void } })._sender;
  const original = sender.sendFrame.bind(sender);
  let calls = 0;
  sender.sendFrame = (...args: unknown[]) => {
    calls++;
    original(...args);
  };
  return { server, client, received, viaWs: () => calls };
}

function outboxOf(items: string[]): Outbox {
  const outbox = new Outbox();
  for (const item of items) outbox.push(item);
  return outbox;
}

const scheduler = new FlushScheduler({ onUnserializable: () => undefined, onFlushError: () => undefined });
const noDrain = { onDrained: () => (): void => undefined };

describe('the outbox writes frames to the TCP socket itself while ws is idle', () => {
  it('ASCII messages of every header size arrive as the text messages ws.send would make, without ws framing them', async () => {
    const { server, received, viaWs } = await pair();
    // Payload lengths around each header form the outbox writes itself (7-bit and 16-bit
    // lengths, up to its 16 Ki-character cap); larger ones (16- and 64-bit) go through ws.send.
    const lengths = [2, 125, 126, 127, 16 * 1024, 65_535, 65_536, 70_001];
    const messages = lengths.map((length, i) => JSON.stringify(`${i}`.padEnd(length - 2, 'x')));
    outboxOf(messages).write(server, false, 64 * 1024 * 1024, scheduler, new WebSocketStatsRecorder(), noDrain);
    await until(() => received.length === messages.length, 'every message');
    expect(received.map((message) => message.text)).toEqual(messages);
    expect(received.every((message) => !message.binary)).toBe(true);
    expect(viaWs()).toBe(3);
  });

  it('keeps the order when non-ASCII messages (through ws.send), pings and direct writes mix', async () => {
    const { server, client, received, viaWs } = await pair();
    const pings: number[] = [];
    client.on('ping', () => pings.push(received.length));
    const stats = new WebSocketStatsRecorder();
    outboxOf(['"a"', '"é"', '"b"']).write(server, false, 1 << 30, scheduler, stats, noDrain);
    server.ping();
    outboxOf(['"😀"', '"c"', '"d"']).write(server, false, 1 << 30, scheduler, stats, noDrain);
    await until(() => received.length === 6, 'every message');
    expect(received.map((message) => message.text)).toEqual(['"a"', '"é"', '"b"', '"😀"', '"c"', '"d"']);
    expect(pings).toEqual([3]);
    expect(viaWs()).toBe(3); // the two non-ASCII messages and the ping
    expect(stats.messagesSent).toBe(6);
  });

  it('passes the drain callback with the message that fills the socket, and batches a tick into one array message', async () => {
    const { server, client, received } = await pair();
    const tcp = (client as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    // Messages the outbox writes itself (≤ 16 Ki characters), one flush of 100 (batching off):
    // what it writes ahead is counted until the socket has drained; past 512 KiB it stops and waits.
    const big = JSON.stringify('y'.repeat(12 * 1024));
    const outbox = outboxOf(Array.from({ length: 100 }, () => big));
    let drained = 0;
    outbox.write(server, false, 512 * 1024, scheduler, new WebSocketStatsRecorder(), { onDrained: () => () => void drained++ });
    expect(outbox.awaitingDrain).toBe(true);
    expect(outbox.size).toBeGreaterThan(0);
    tcp.resume();
    await until(() => drained === 1, 'drained');
    outbox.awaitingDrain = false;
    outbox.write(server, false, 64 * 1024 * 1024, scheduler, new WebSocketStatsRecorder(), noDrain);
    await until(() => received.length === 100, 'every message');
    expect(received.every((message) => message.text === big)).toBe(true);

    const small = outboxOf(['1', '2', '3']);
    small.write(server, true, 64 * 1024 * 1024, scheduler, new WebSocketStatsRecorder(), noDrain);
    await until(() => received.length === 101, 'the batch');
    expect(received[100]!.text).toBe('[1,2,3]');
  });

  it('falls back to ws.send once the socket is closing (which reports it without throwing)', async () => {
    const { server, client, received, viaWs } = await pair();
    const closed = new Promise<number>((resolve) => client.once('close', resolve));
    server.close(1000, 'bye');
    outboxOf(['"late"']).write(server, false, 1 << 30, scheduler, new WebSocketStatsRecorder(), noDrain);
    expect(await closed).toBe(1000);
    expect(received).toEqual([]);
    expect(viaWs()).toBe(1); // the close frame; the late message was refused by ws.send
  });

  it('frame headers follow RFC 6455 for each payload length form', () => {
    const bytes = (header: string): number[] => [...header].map((c) => c.charCodeAt(0));
    expect(bytes(frameHeader(0))).toEqual([0x81, 0]);
    expect(bytes(frameHeader(125))).toEqual([0x81, 125]);
    expect(bytes(frameHeader(126))).toEqual([0x81, 126, 0, 126]);
    expect(bytes(frameHeader(65_535))).toEqual([0x81, 126, 0xff, 0xff]);
    expect(bytes(frameHeader(65_536))).toEqual([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    expect(bytes(frameHeader(0x12345678))).toEqual([0x81, 127, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
  });
});

describe('event frames of memory log entries', () => {
  it('quote the cursor as it is: the memory log\'s cursors never need escaping', () => {
    const log = new MemoryTransport({ maxEventsPerThread: 3 });
    for (const threadId of ['t', 'a.b:c-d_e', 'Z'.repeat(128), '0-0']) {
      const runId = generateRunId(threadId);
      for (let seq = 1; seq <= 5; seq++) {
        const event = { v: 1, id: `e${seq}`, type: seq === 1 ? 'agent_started' : 'agent_thinking', runId, threadId, userId: 'u', agent: 'a', seq, ts: 1, data: seq === 1 ? { metadata: {} } : { text: 'é"\\' } } as AgentEvent;
        const entry = log.append(event);
        expect(entry.cursor).toMatch(/^[\w.:-]*$/);
        const frame = JSON.parse(eventFrameJson(entry, entry.json!)) as { cursor: string; event: AgentEvent; threadId: string };
        expect(frame).toEqual({ type: 'event', threadId, cursor: entry.cursor, event: JSON.parse(JSON.stringify(event)) });
      }
    }
  });
});
