/**
 * Shared pieces of the reliability suites (faults-*, hostile-*, resources-*, soak): the full
 * stack agent → AgentBridge → (optional fault injector) → WebSocketGateway → real `agentwire/client`
 * over loopback, a load agent with interleaved (and parallel) tool calls, HMAC tokens with an
 * expiry, and the check of what each receiving client got against what the agents emitted.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import {
  AgentBridge,
  BaseAgent,
  MemoryTransport,
  defineTool,
  tokenFrom,
  validateLifecycle,
  type AgentBridgeOptions,
  type AgentEvent,
  type Authenticate,
  type BaseAgentOptions,
  type BridgeState,
  type DeliveryError,
  type MemoryTransportOptions,
  type RunContext,
} from '../../src/index.js';
import { WebSocketGateway, type WebSocketGatewayOptions } from '../../src/transport/websocket/index.js';
import { ScriptedAgent } from './agents.js';
import { FaultyTransport } from './faulty-transport.js';
import { authenticate as testTokens } from './ws-harness.js';

// ---------------------------------------------------------------------------------------------
// Tokens: HMAC-signed, with an expiry (what an integrator's authenticate hook typically checks).

export type TokenRefusal = 'missing' | 'malformed' | 'bad_signature' | 'expired';

/** Issues and verifies `base64url({sub, exp}).base64url(hmac-sha256)` tokens. */
export class TokenIssuer {
  /** Why tokens were refused, counted (so a test knows which path refused it). */
  readonly refusals: Record<TokenRefusal, number> = { missing: 0, malformed: 0, bad_signature: 0, expired: 0 };

  constructor(
    private readonly secret: Buffer = randomBytes(32),
    private readonly now: () => number = Date.now,
  ) {}

  issue(userId: string, expiresAtMs: number = this.now() + 60_000): string {
    const payload = Buffer.from(JSON.stringify({ sub: userId, exp: expiresAtMs })).toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  /** A token for `userId` signed with another key (a forgery). */
  forge(userId: string, expiresAtMs: number = this.now() + 60_000): string {
    return new TokenIssuer(randomBytes(32), this.now).issue(userId, expiresAtMs);
  }

  verify(token: string | undefined): { userId: string; expiresAtMs: number } | TokenRefusal {
    if (!token) return 'missing';
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) return 'malformed';
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.sign(payload), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad_signature';
    let claims: { sub?: unknown; exp?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown; exp?: unknown };
    } catch {
      return 'malformed';
    }
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return 'malformed';
    if (claims.exp <= this.now()) return 'expired';
    return { userId: claims.sub, expiresAtMs: claims.exp };
  }

  /** The gateways' hook: `{ userId }` for a valid, unexpired token; null (→ HTTP 401) otherwise. */
  readonly authenticate: Authenticate = (request) => {
    const outcome = this.verify(tokenFrom(request));
    if (typeof outcome === 'string') {
      this.refusals[outcome]++;
      return null;
    }
    return { userId: outcome.userId };
  };

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }
}

// ---------------------------------------------------------------------------------------------
// A load agent: thoughts with interleaved tool calls, some of them two at once, some failing.

export interface LoadInput {
  thoughts: number;
  /** Tool calls, spread among the thoughts. Events per run: 2 + thoughts + 2 × tools. */
  tools: number;
  /** Every other tool step calls two tools concurrently (their events interleave). */
  parallel?: boolean;
  /** Every `failEvery`-th tool call is to a tool that throws; the agent catches it and goes on. */
  failEvery?: number;
  /** Delay of each tool call (0: one event-loop turn). */
  toolDelayMs?: number;
  /** Pause after each thought (a paced agent); default none. */
  thoughtDelayMs?: number;
  /** Marker put in every thought and tool result (to look for it where it must not be). */
  marker?: string;
}

/** Events a `LoadAgent` run emits. */
export const loadEvents = (input: Pick<LoadInput, 'thoughts' | 'tools'>): number => 2 + input.thoughts + 2 * input.tools;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));

export class LoadAgent extends BaseAgent<LoadInput, number> {
  constructor(options: BaseAgentOptions = {}) {
    super({ name: 'load', ...options });
    this.addTool(
      defineTool({
        name: 'lookup',
        description: 'answers after a delay',
        parameters: z.object({ q: z.number(), delayMs: z.number(), marker: z.string() }),
        execute: async ({ q, delayMs, marker }) => {
          await sleep(delayMs);
          return { q, answer: `${marker} answer ${q}` };
        },
      }),
    );
    this.addTool(
      defineTool({
        name: 'flaky',
        description: 'throws after a delay',
        parameters: z.object({ q: z.number(), delayMs: z.number() }),
        execute: async ({ q, delayMs }) => {
          await sleep(delayMs);
          throw new RangeError(`flaky tool failed on ${q}`);
        },
      }),
    );
  }

  protected async execute(input: LoadInput, _ctx: RunContext): Promise<number> {
    const { thoughts, tools, parallel = false, failEvery = 0, toolDelayMs = 0, thoughtDelayMs = 0, marker = 'load' } = input;
    const every = Math.max(1, Math.floor(thoughts / Math.max(1, tools)));
    let thought = 0;
    let call = 0;
    let step = 0;
    const callOne = async (): Promise<void> => {
      const q = call++;
      try {
        if (failEvery > 0 && q % failEvery === failEvery - 1) await this.callTool('flaky', { q, delayMs: toolDelayMs });
        else await this.callTool('lookup', { q, delayMs: toolDelayMs, marker });
      } catch {
        // A failed tool call is an event (tool_completed failed), not the end of the run.
      }
    };
    while (thought < thoughts || call < tools) {
      if (thought < thoughts) {
        await this.think(`${marker} thought ${thought++}`, thought);
        if (thoughtDelayMs > 0) await sleep(thoughtDelayMs);
      }
      if (call < tools && (thought >= thoughts || thought % every === 0)) {
        if (parallel && step++ % 2 === 1 && tools - call >= 2) await Promise.all([callOne(), callOne()]);
        else await callOne();
      }
    }
    return call;
  }
}

// ---------------------------------------------------------------------------------------------
// What the agents emitted: the reference every receiving client is checked against.

/** Records every event the given agents emitted (local observation, synchronous at emission) and every refused one. */
export class EmissionLog {
  private readonly byThread = new Map<string, AgentEvent[]>();
  readonly refused = new Map<string, DeliveryError>();
  emitted = 0;

  constructor(agents: Array<Pick<BaseAgent, 'on'>>) {
    for (const agent of agents) {
      agent.on('event', (event) => {
        this.emitted++;
        const key = `${event.userId}/${event.threadId}`;
        const list = this.byThread.get(key);
        if (list) list.push(event);
        else this.byThread.set(key, [event]);
      });
      agent.on('delivery_error', (error, event) => this.refused.set(event.id, error));
    }
  }

  /** Every event emitted into a user's thread, in emission order. */
  all(userId: string, threadId: string): AgentEvent[] {
    return this.byThread.get(`${userId}/${threadId}`) ?? [];
  }

  /** What a follower of the thread must receive: everything emitted that the bridge did not refuse. */
  expected(userId: string, threadId: string): AgentEvent[] {
    return this.all(userId, threadId).filter((event) => !this.refused.has(event.id));
  }
}

// ---------------------------------------------------------------------------------------------
// The stack.

/** Fast retries so fault tests take milliseconds (the policy is the same as the defaults'). */
export const FAST_RETRY = { retries: 3, minTimeoutMs: 2, factor: 2, maxTimeoutMs: 20, randomize: true } as const;

/**
 * Fails some sends, but never the same event more than `maxPerEvent` times in a row, so the
 * bridge's retries (3) always get it through: "intermittent" failures, deterministic (seeded).
 */
export class IntermittentTransport extends FaultyTransport {
  private readonly failedAttempts = new Map<string, number>();
  private seed: number;
  intermittent = false;

  constructor(
    inner: ConstructorParameters<typeof FaultyTransport>[0],
    private readonly rate = 0.1,
    private readonly maxPerEvent = 2,
    seed = 42,
  ) {
    super(inner);
    this.seed = seed;
  }

  override async send(event: AgentEvent): Promise<void> {
    if (this.intermittent) {
      const failed = this.failedAttempts.get(event.id) ?? 0;
      if (failed < this.maxPerEvent && this.random() < this.rate) {
        this.failedAttempts.set(event.id, failed + 1);
        this.failNext(1);
      } else {
        this.failedAttempts.delete(event.id);
      }
    }
    return super.send(event);
  }

  /** mulberry32 */
  private random(): number {
    let t = (this.seed += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

export interface StackOptions {
  gateway?: Partial<WebSocketGatewayOptions>;
  memory?: MemoryTransportOptions;
  bridge?: Omit<AgentBridgeOptions, 'transport'>;
  /** Default: the ws-harness test tokens (`token-<userId>`). */
  authenticate?: Authenticate;
  /** Intermittent failure rate of the injector between bridge and gateway (when switched on). */
  faultRate?: number;
}

/**
 * agent → AgentBridge → IntermittentTransport (a FaultyTransport: `down()`, `up()`, `failNext()`,
 * or `intermittent = true`) → WebSocketGateway on 127.0.0.1:0 → its MemoryTransport log.
 */
export async function startStack(options: StackOptions = {}) {
  const transport = new MemoryTransport(options.memory);
  const gateway = new WebSocketGateway({ authenticate: options.authenticate ?? testTokens, transport, ...options.gateway });
  const { url, port } = await gateway.listen(0, '127.0.0.1');
  const faults = new IntermittentTransport(gateway, options.faultRate);
  const bridge = new AgentBridge({ transport: faults, retry: FAST_RETRY, recoveryIntervalMs: 10, ...options.bridge });
  const states: BridgeState[] = [];
  bridge.on('state', (next) => states.push(next));
  await bridge.initialize();
  const load = new LoadAgent({ bridge });
  const scripted = new ScriptedAgent({ bridge });
  const emitted = new EmissionLog([load, scripted]);
  let stopped = false;
  return {
    transport,
    gateway,
    faults,
    bridge,
    states,
    load,
    scripted,
    emitted,
    url,
    port,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      faults.up();
      faults.intermittent = false;
      await bridge.close(); // closes the injector, which closes the gateway
      await gateway.close();
      await transport.close();
    },
  };
}
export type Stack = Awaited<ReturnType<typeof startStack>>;

// ---------------------------------------------------------------------------------------------
// What a receiving client got.

export interface StreamReport {
  userId: string;
  threadId: string;
  expected: number;
  received: number;
  /** Expected events that never arrived. */
  lost: string[];
  /** Events received that were not expected (not emitted into this thread, or refused). */
  unexpected: string[];
  /** Events handed to the application more than once (after the client's dedupe: must be 0). */
  repeated: number;
  /** Repeats the client dropped by id (before dedupe). */
  droppedByDedupe: number;
  /** Events of another user or thread that reached the application (must be 0). */
  foreign: number;
  /** First lifecycle violation of the received stream (run grammar, gapless seq per run). */
  violation: string | undefined;
  runs: number;
}

export interface Follower {
  client: { stats: { duplicates: number; foreign: number } };
  events: AgentEvent[];
  userId: string;
  threadId: string;
}

/** Compares what `follower` received with `expected`; `allowGaps` for streams the bridge refused events of. */
export function checkStream(follower: Follower, expected: AgentEvent[]): StreamReport {
  const { events, userId, threadId } = follower;
  const want = new Set(expected.map((event) => event.id));
  const got = new Set<string>();
  let repeated = 0;
  for (const event of events) {
    if (got.has(event.id)) repeated++;
    got.add(event.id);
  }
  const lifecycle = validateLifecycle(events);
  return {
    userId,
    threadId,
    expected: expected.length,
    received: events.length,
    lost: [...want].filter((id) => !got.has(id)),
    unexpected: [...got].filter((id) => !want.has(id)),
    repeated,
    droppedByDedupe: follower.client.stats.duplicates,
    foreign: events.filter((event) => event.userId !== userId || event.threadId !== threadId).length + follower.client.stats.foreign,
    violation: lifecycle.ok ? undefined : `${lifecycle.violation.rule}: ${lifecycle.violation.message}`,
    runs: lifecycle.ok ? lifecycle.runs : 0,
  };
}

/** The report of a stream that is complete, exactly once, in order and isolated (for `toEqual`). */
export function perfect(report: StreamReport, runs: number): StreamReport {
  return { ...report, received: report.expected, lost: [], unexpected: [], repeated: 0, foreign: 0, violation: undefined, runs };
}

/** Resolves after `ms`. */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Prints a scenario's figures when AGENTWIRE_FIGURES is set (how docs/reliability.md was filled in). */
export function figures(scenario: string, values: Record<string, unknown>): void {
  if (process.env.AGENTWIRE_FIGURES) console.log(`[figures] ${scenario}: ${JSON.stringify(values)}`);
}
