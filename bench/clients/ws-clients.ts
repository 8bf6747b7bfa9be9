/**
 * Bench client process: opens groups of WebSocket connections to the producer process and counts
 * (and, when asked, times) the events they deliver. Started by the suites through `BenchChild`
 * (../lib/child.ts: the compiled script, or this source under tsx) and driven over IPC.
 *
 * Kinds of connection:
 * - `gateway`: a plain `ws` socket speaking the agentwire protocol (subscribe, then event frames;
 *   a message holds one frame or an array of frames). The minimal client: parse and count.
 * - `raw`: a plain `ws` socket to the raw baseline server; every message is one event.
 * - `raw-handshake`: a plain `ws` socket to a bare `ws` server that exchanges the protocol's three
 *   opening messages (hello, subscribe, subscribed) and nothing else: the memory suite's second baseline.
 * - `sio`: a Socket.IO 4 client (websocket transport only) in the room of its thread; counts `event` packets.
 * - `sdk`: the real `agentwire/client` (`connect()` from src/client/node.ts): dedupe by id,
 *   lifecycle order check, cursor tracking, listeners.
 * Every message is parsed (`JSON.parse`); an array counts its event elements.
 */
import { io as socketIo, type Socket as SocketIoSocket } from 'socket.io-client';
import WebSocket from 'ws';
import { connect, type AgentwireClient } from '../../src/client/node.js';
import type { AgentEvent } from '../../src/index.js';
import { nowMs } from '../lib/clock.js';
import { notify, serve } from '../lib/ipc.js';

type Kind = 'gateway' | 'raw' | 'raw-handshake' | 'sdk' | 'sio';

interface Group {
  kind: Kind;
  sockets: WebSocket[];
  clients: AgentwireClient[];
  sio: SocketIoSocket[];
  /** Events counted since the last `arm`. */
  received: number;
  messages: number;
  target: number;
  errors: number;
  firstError: string | undefined;
  /** Latency recording (producer clock = our clock − offsetMs). */
  latency: Float64Array | undefined;
  recorded: number;
  offsetMs: number;
  /** Called instead of the `done` notification when the target is reached. */
  onTarget?: () => void;
}

const groups = new Map<string, Group>();

function group(name: string): Group {
  const found = groups.get(name);
  if (!found) throw new Error(`no group ${name}`);
  return found;
}

/** Counts events (and records their latency) for one message's worth of events. */
function delivered(g: Group, events: number, timestamps?: readonly number[]): void {
  g.messages++;
  if (g.latency && timestamps) {
    const now = nowMs() - g.offsetMs;
    for (const ts of timestamps) {
      if (g.recorded < g.latency.length) g.latency[g.recorded++] = now - ts;
    }
  }
  const before = g.received;
  g.received += events;
  if (before < g.target && g.received >= g.target) {
    if (g.onTarget) g.onTarget();
    else notify('done', { endMs: nowMs(), received: g.received, messages: g.messages });
  }
}

function fail(g: Group, message: string): void {
  g.errors++;
  g.firstError ??= message;
}

/** Handles one message of the agentwire protocol: counts its event frames, hands the others to `onControl`. */
function onGatewayMessage(g: Group, data: WebSocket.RawData, onControl: (frame: { type: string; [key: string]: unknown }) => void): void {
  const value = JSON.parse(String(data)) as { type: string; event?: AgentEvent } | Array<{ type: string; event?: AgentEvent }>;
  const frames = Array.isArray(value) ? value : [value];
  let events = 0;
  const stamps: number[] | undefined = g.latency ? [] : undefined;
  for (const frame of frames) {
    if (frame.type === 'event') {
      events++;
      stamps?.push(frame.event!.ts);
    } else {
      onControl(frame);
    }
  }
  if (events > 0) delivered(g, events, stamps);
}

function onRawMessage(g: Group, data: WebSocket.RawData): void {
  const value = JSON.parse(String(data)) as AgentEvent | AgentEvent[];
  if (Array.isArray(value)) delivered(g, value.length, g.latency ? value.map((event) => event.ts) : undefined);
  else delivered(g, 1, g.latency ? [value.ts] : undefined);
}

function withToken(url: string, userId: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(`tok-${userId}`)}`;
}

/** Opens one connection of the group; resolves once it is subscribed (gateway, raw-handshake, sdk) or open (raw). */
function openOne(g: Group, url: string, userId: string, threadId: string, after?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (g.kind === 'sdk') {
      const client = connect(url, { threadId, token: `tok-${userId}`, reconnect: false, ...(after ? { after } : {}) });
      g.clients.push(client);
      client.on('event', () => delivered(g, 1));
      client.on('error', (error) => fail(g, `${error.code}: ${error.message}`));
      client.on('status', (status) => {
        if (status === 'open') resolve();
        else if (status === 'closed') reject(new Error(`sdk client for ${userId} closed: ${g.firstError ?? ''}`));
      });
      return;
    }
    if (g.kind === 'sio') {
      const socket = socketIo(url, { transports: ['websocket'], query: { room: threadId }, forceNew: true, reconnection: false });
      g.sio.push(socket);
      // Socket.IO's client has parsed the packet already: count it.
      socket.on('event', () => delivered(g, 1));
      socket.once('joined', () => resolve());
      socket.once('connect_error', (error) => {
        fail(g, error.message);
        reject(error);
      });
      return;
    }
    const socket = new WebSocket(g.kind === 'gateway' ? withToken(url, userId) : url, { perMessageDeflate: false });
    g.sockets.push(socket);
    let ready = false;
    socket.on('error', (error) => {
      fail(g, error.message);
      if (!ready) reject(error);
    });
    socket.on('close', (code) => {
      if (!ready) reject(new Error(`closed before ready (${code})`));
    });
    if (g.kind === 'raw') {
      socket.on('open', () => {
        ready = true;
        resolve();
      });
      socket.on('message', (data) => onRawMessage(g, data));
      return;
    }
    socket.on('open', () => socket.send(JSON.stringify(after ? { type: 'subscribe', threadId, after } : { type: 'subscribe', threadId })));
    socket.on('message', (data) =>
      onGatewayMessage(g, data, (frame) => {
        if (frame.type === 'subscribed' && !ready) {
          ready = true;
          resolve();
        } else if (frame.type === 'error' || frame.type === 'history_gap') {
          fail(g, JSON.stringify(frame));
          if (!ready) reject(new Error(JSON.stringify(frame)));
        }
      }),
    );
  });
}

function newGroup(kind: Kind): Group {
  return { kind, sockets: [], clients: [], sio: [], received: 0, messages: 0, target: Infinity, errors: 0, firstError: undefined, latency: undefined, recorded: 0, offsetMs: 0 };
}

async function closeGroup(g: Group): Promise<void> {
  for (const client of g.clients) client.close();
  for (const socket of g.sio) socket.disconnect();
  const closing = g.sockets.map(
    (socket) =>
      new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        const timer = setTimeout(() => {
          socket.terminate();
          resolve();
        }, 2_000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.close();
      }),
  );
  await Promise.all(closing);
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

serve({
  clock: () => ({ now: nowMs() }),

  /** Opens `count` connections: connection i is user `<prefix>-u<i>` following `<prefix>-t<i>`. */
  async open(args) {
    const { name, kind, url, prefix, count } = args as { name: string; kind: Kind; url: string; prefix: string; count: number };
    const parallel = Number(args.parallel ?? 100);
    const g = newGroup(kind);
    groups.set(name, g);
    const started = nowMs();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        await openOne(g, url, `${prefix}-u${i}`, `${prefix}-t${i}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
    return { opened: count, ms: nowMs() - started };
  },

  /** Resets the group's counters; a `done` notification follows once `target` events have arrived. */
  arm(args) {
    const g = group(args.name as string);
    g.received = 0;
    g.messages = 0;
    g.target = Number(args.target ?? Infinity);
    g.recorded = 0;
    g.latency = args.latencyCapacity ? new Float64Array(Number(args.latencyCapacity)) : undefined;
    g.offsetMs = Number(args.offsetMs ?? 0);
    return {};
  },

  counts(args) {
    const g = group(args.name as string);
    return { received: g.received, messages: g.messages, errors: g.errors, firstError: g.firstError };
  },

  /** Latency percentiles (ms) of what was recorded since `arm`. */
  latency(args) {
    const g = group(args.name as string);
    const sorted = (g.latency ?? new Float64Array(0)).slice(0, g.recorded).sort();
    let sum = 0;
    for (const value of sorted) sum += value;
    return {
      count: sorted.length,
      min: sorted[0] ?? NaN,
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      p999: percentile(sorted, 0.999),
      max: sorted[sorted.length - 1] ?? NaN,
      mean: sum / Math.max(1, sorted.length),
    };
  },

  async close(args) {
    const g = group(args.name as string);
    groups.delete(args.name as string);
    await closeGroup(g);
    return { errors: g.errors, firstError: g.firstError };
  },

  /**
   * A reconnecting client: opens one connection (resuming after `after` where given) and
   * resolves with the time from opening the socket until `expected` events have arrived.
   */
  async resume(args) {
    const { kind, url, userId, threadId, after, expected } = args as {
      kind: Kind;
      url: string;
      userId: string;
      threadId: string;
      after?: string;
      expected: number;
    };
    const g = newGroup(kind);
    g.target = expected;
    const started = nowMs();
    const done = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`resume: ${g.received}/${expected} events after 60 s (${g.firstError ?? ''})`)), 60_000);
      g.onTarget = () => {
        clearTimeout(timer);
        resolve(nowMs() - started);
      };
      openOne(g, url, userId, threadId, after).catch((error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
    try {
      const ms = await done;
      if (g.received !== expected) throw new Error(`resume: received ${g.received} events, expected ${expected}`);
      return { ms, errors: g.errors, firstError: g.firstError };
    } finally {
      await closeGroup(g);
    }
  },
});

notify('ready');
