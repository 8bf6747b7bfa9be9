/**
 * Constructor options are validated by one checker (src/errors/options.ts): every hostile value of
 * every numeric, boolean or function option is refused with `ValidationError` `INVALID_OPTION`
 * naming the option and its owner, every valid one is accepted, and `undefined` is the default.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentBridge } from '../../src/bridge/agent-bridge.js';
import { ValidationError } from '../../src/errors/index.js';
import { MAX_TIMER_MS, checker, shown } from '../../src/errors/options.js';
import { isWellFormed } from '../../src/ids/user-id-format.js';
import { checker as gatewayChecker, resolveFrontEndOptions, shown as gatewayShown } from '../../src/gateway/options.js';
import { resolveQueueOptions } from '../../src/runs/bullmq/options.js';
import { MemoryRunQueue } from '../../src/runs/memory-queue.js';
import { MemoryTransport } from '../../src/transport/memory/memory-transport.js';
import { createAguiHandler } from '../../src/agui/handler.js';
import { SseGateway } from '../../src/gateway/sse/gateway.js';
import { AnswerEndpoint } from '../../src/gateway/answers/handler.js';
import { RunsHandler } from '../../src/gateway/runs/handler.js';
import { createChatHandler } from '../../src/ai-sdk/ui/chat-handler.js';
import { resolveReconnect } from '../../src/client/backoff.js';
import { AgentwireClient } from '../../src/client/client.js';
import type { WebSocketLike } from '../../src/client/socket.js';
import { ThreadRegistry } from '../../src/ids/thread-registry.js';
import { ScriptedAgent } from '../helpers/agents.js';
import { until } from '../helpers/wait.js';
import { z } from 'zod';
import { BaseAgent } from '../../src/agent/base-agent.js';
import { defineTool } from '../../src/agent/tool.js';
import { connect as connectNode } from '../../src/client/node.js';
import { resolveGatewayOptions } from '../../src/gateway/websocket/options.js';
import { resolveEventLogOptions, resolveTransportOptions } from '../../src/transport/redis/options.js';
import { MockLanguageModelV3, convertArrayToReadableStream } from 'ai/test';
import { createServer } from 'node:http';
import { WebSocketGateway } from '../../src/gateway/websocket/gateway.js';
import { ModelAgent } from '../../src/ai-sdk/model/model-agent.js';
import { otelInstrumentation } from '../../src/otel/instrumentation.js';
import { AguiEventMapper } from '../../src/agui/mapper.js';
import { UiChunkMapper } from '../../src/ai-sdk/ui/chunk-mapper.js';
import { createMetricsRegistry } from '../../src/metrics/registry.js';
import { metricsHandler } from '../../src/metrics/handler.js';
import { Registry } from 'prom-client';

/** What an option accepts. */
type Kind =
  | { type: 'int'; min: number; max?: number }
  | { type: 'ms'; min?: number; max?: number; integer?: boolean }
  | { type: 'num'; min: number; max: number }
  | { type: 'attempts' }
  | { type: 'fn' }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly unknown[] }
  | { type: 'str'; min: number; max: number }
  | { type: 'obj' }
  | { type: 'fnOrBool' }
  /** An object with these methods (a bridge, a log, a server): what the owner calls on it. */
  | { type: 'like'; methods: readonly string[] }
  /** Anything else: what the option's type says, as a predicate. */
  | { type: 'custom'; accepts: (value: unknown) => boolean };

const count: Kind = { type: 'int', min: 1 };
const count0: Kind = { type: 'int', min: 0 };
const duration: Kind = { type: 'ms' };
const timer: Kind = { type: 'ms', max: MAX_TIMER_MS };
const timer0: Kind = { type: 'ms', min: 0, max: MAX_TIMER_MS };

function accepts(kind: Kind, value: unknown): boolean {
  switch (kind.type) {
    case 'fn':
      return typeof value === 'function';
    case 'bool':
      return typeof value === 'boolean';
    case 'enum':
      return kind.values.includes(value);
    case 'str':
      return typeof value === 'string' && value.length >= kind.min && value.length <= kind.max && isWellFormed(value);
    case 'obj':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'fnOrBool':
      return typeof value === 'function' || typeof value === 'boolean';
    case 'like':
      return typeof value === 'object' && value !== null && kind.methods.every((name) => typeof (value as Record<string, unknown>)[name] === 'function');
    case 'custom':
      return kind.accepts(value);
    case 'num':
      return typeof value === 'number' && Number.isFinite(value) && value >= kind.min && value <= kind.max;
    case 'attempts':
      return value === Infinity || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0);
    case 'int':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= kind.min && value <= (kind.max ?? Number.MAX_SAFE_INTEGER);
    case 'ms':
      return (
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (kind.min === undefined ? value > 0 : value >= kind.min) &&
        value <= (kind.max ?? Number.MAX_VALUE) &&
        (!kind.integer || Number.isInteger(value))
      );
  }
}

/** One constructor: builds it (or resolves its options) with `{ [option]: value }`. */
interface Subject {
  owner: string;
  build: (options: Record<string, unknown>) => void;
  /** Option → what it accepts; a dotted name is an option inside an object (`retry.retries` → `{ retry: { retries } }`). */
  options: Record<string, Kind>;
  /** The field a `null` in place of the options is refused as. Default `options`. */
  nullField?: string;
}

/** A socket that never opens: the client is built, validated, and closed again. */
class IdleSocket implements WebSocketLike {
  readyState = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  send(): void {}
  close(): void {
    this.readyState = 3;
  }
}
/** `new AgentwireClient(…)` (what `connect()` returns) with `options`, closed at once. */
function buildClient(options: Record<string, unknown>): void {
  // `WebSocket: undefined` means the global one, which Node 20 lacks: the idle socket stands in for it.
  const given = options === null ? null : { threadId: 't', ...options, WebSocket: options.WebSocket === undefined ? IdleSocket : options.WebSocket };
  const client = new AgentwireClient('ws://127.0.0.1:1/ws', given as never);
  client.close();
}

const authenticate = () => null;
const agent = { name: 'a', run: () => Promise.resolve() };
/** `build` with the required options of a surface added (null, the options themselves, stays null). */
const withRequired = (required: Record<string, unknown>, build: (options: Record<string, unknown>) => void) => (options: Record<string, unknown>) =>
  build(options === null ? (null as never) : { ...required, ...options });
const wsMs: Kind = { type: 'int', min: 0, max: MAX_TIMER_MS };
const runSurfaceOptions: Record<string, Kind> = {
  authTimeoutMs: { type: 'int', min: 1, max: MAX_TIMER_MS },
  maxConnectionsPerUser: count,
  maxConnections: count,
  heartbeatIntervalMs: wsMs,
  closeTimeoutMs: wsMs,
  onError: { type: 'fn' },
  maxQueuedBytes: count,
  maxQueuedEvents: count,
  terminalTimeoutMs: { type: 'int', min: 1, max: MAX_TIMER_MS },
  maxBodyBytes: count,
  maxBodyDepth: count,
  bodyTimeoutMs: { type: 'int', min: 1, max: MAX_TIMER_MS },
  maxRunsPerUser: count,
  maxRuns: count,
  pauseOnRequest: { type: 'bool' },
  abortOnDisconnect: { type: 'bool' },
};

/** The shared options of the HTTP endpoints that hold no stream (AnswerEndpoint, RunsHandler). */
const httpEndpointOptions: Record<string, Kind> = {
  authTimeoutMs: { type: 'int', min: 1, max: MAX_TIMER_MS },
  onError: { type: 'fn' },
  maxBodyBytes: count,
  maxBodyDepth: count,
  bodyTimeoutMs: { type: 'int', min: 1, max: MAX_TIMER_MS },
};

function optionsWith(option: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = option.split('.') as [string, ...string[]];
  return { [head]: rest.length === 0 ? value : optionsWith(rest.join('.'), value) };
}

/** `connect()` of `agentwire/client/node` (fills in `ws` and `tokenIn: 'header'` only for undefined), closed at once. */
function buildNodeClient(options: Record<string, unknown>): void {
  const client = connectNode('ws://127.0.0.1:1/ws', (options === null ? null : { threadId: 't', reconnect: false, ...options }) as never);
  client.close();
}

class PlainAgent extends BaseAgent<unknown, string> {
  protected async execute(): Promise<string> {
    return 'o';
  }
}

const tool = { name: 't', description: 'd', parameters: z.object({}), execute: () => 'r' };

/** What a run calls on its bridge, and on its interaction log. */
const BRIDGE_METHODS = ['openRun', 'claimRunId', 'abandonRun', 'trackRun', 'untrackRun', 'deliver', 'enqueueSerialized'];
const INTERACTION_METHODS = ['subscribe', 'answerRequest', 'openRequest', 'closeRequest'];
const mockModel = new MockLanguageModelV3();
const anyNumber: Kind = { type: 'num', min: -Number.MAX_VALUE, max: Number.MAX_VALUE };
const stringList: Kind = { type: 'custom', accepts: (value) => Array.isArray(value) && value.every((item) => typeof item === 'string') };
/** `options` without its undefined values. */
const definedOf = (options: Record<string, unknown>) => Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));

const subjects: Subject[] = [
  {
    owner: 'MemoryTransport',
    build: (options) => new MemoryTransport(options as never),
    options: {
      maxEventsPerThread: count,
      maxBytesPerThread: count,
      maxThreads: count,
      maxTotalEvents: count,
      maxTotalBytes: count,
      threadTtlMs: duration,
      now: { type: 'fn' },
    },
  },
  {
    owner: 'AgentBridge',
    build: (options) => new AgentBridge(options as never),
    options: {
      maxBufferedPerRun: count,
      maxBufferedTotal: count,
      recoveryIntervalMs: timer,
      failAfterMs: duration,
      drainTimeoutMs: timer0,
      highWaterMark: count0,
      validate: { type: 'bool' },
      'retry.retries': count0,
      'retry.minTimeoutMs': timer0,
      'retry.maxTimeoutMs': { type: 'ms', min: 100, max: MAX_TIMER_MS },
      'retry.randomize': { type: 'bool' },
    },
  },
  {
    owner: 'RedisStreamsTransport',
    build: (options) => resolveTransportOptions(options as never),
    options: {
      maxLenPerThread: count,
      threadTtlSeconds: count,
      maxBatchSize: count,
      maxBatchBytes: count,
      closeTimeoutMs: timer0,
      reconnectMinDelayMs: { type: 'ms', min: 1, max: MAX_TIMER_MS },
      reconnectMaxDelayMs: { type: 'ms', min: 50, max: MAX_TIMER_MS },
      connectTimeoutMs: { type: 'ms', min: 1, max: MAX_TIMER_MS },
      onError: { type: 'fn' },
      // The read side opens on the first subscribe(); its options are refused at construction.
      'log.blockMs': { type: 'ms', min: 1, max: MAX_TIMER_MS, integer: true },
      'log.readCount': count,
      'log.maxPendingPerSubscriber': count,
      'log.maxReplayBytes': count,
      'log.maxConcurrentReplaysPerUser': count,
      'log.maxQueuedReplaysPerUser': count0,
      'log.validate': { type: 'bool' },
    },
  },
  {
    owner: 'RedisEventLog',
    build: (options) => resolveEventLogOptions(options as never),
    options: {
      blockMs: { type: 'ms', min: 1, max: MAX_TIMER_MS, integer: true },
      readCount: count,
      maxPendingPerSubscriber: count,
      maxReplayBytes: count,
      maxConcurrentReplaysPerUser: count,
      maxQueuedReplaysPerUser: count0,
      validate: { type: 'bool' },
    },
  },
  {
    owner: 'BullMQRunQueue',
    build: (options) => resolveQueueOptions(options as never),
    options: {
      maxRunsPerUser: count,
      maxQueued: count,
      leaseMs: { type: 'int', min: 30, max: MAX_TIMER_MS },
      reapIntervalMs: { type: 'int', min: 10, max: MAX_TIMER_MS },
      statusTtlSeconds: count,
      reap: { type: 'bool' },
      'retryLostRuns.attempts': { type: 'int', min: 1, max: 10 },
      'log.maxLenPerThread': count,
      'log.threadTtlSeconds': count,
    },
  },
  {
    owner: 'MemoryRunQueue',
    build: (options) => new MemoryRunQueue(options as never),
    options: { maxRunsPerUser: count, maxQueued: count, maxFinished: count },
  },
  {
    owner: 'WebSocketGateway',
    build: withRequired({ authenticate }, (options) => resolveGatewayOptions(options as never)),
    options: {
      authTimeoutMs: { type: 'int', min: 1, max: MAX_TIMER_MS },
      maxConnectionsPerUser: count,
      maxConnections: count,
      heartbeatIntervalMs: wsMs,
      closeTimeoutMs: wsMs,
      maxPayload: count,
      maxSubscriptionsPerConnection: count,
      maxBufferedBytes: count,
      maxQueuedFrames: count,
      maxQueuedBytes: count,
      batching: { type: 'bool' },
      subscribeTimeoutMs: wsMs,
      maxInvalidFrames: count0,
      cancelRun: { type: 'fn' },
      onError: { type: 'fn' },
      // An http.Server to attach to (null was taken as none, 5 threw `TypeError: server.on is not a function`; tester round 6, f6).
      server: { type: 'like', methods: ['on', 'off', 'listenerCount'] },
      'rateLimit.framesPerSecond': { type: 'ms' },
      'rateLimit.burst': count,
    },
  },
  {
    owner: 'SseGateway',
    build: withRequired({ authenticate, log: new MemoryTransport() }, (options) => new SseGateway(options as never)),
    options: { retryMs: count0, maxQueuedBytes: count, maxQueuedEvents: count },
  },
  {
    // The answer endpoint and the run endpoints resolve the shared vocabulary as every surface (fifth attack round, f03).
    owner: 'AnswerEndpoint',
    build: withRequired({ authenticate, log: new MemoryTransport() }, (options) => new AnswerEndpoint(options as never)),
    options: httpEndpointOptions,
  },
  {
    owner: 'RunsHandler',
    build: withRequired({ authenticate, queue: new MemoryRunQueue() }, (options) => new RunsHandler(options as never)),
    options: httpEndpointOptions,
  },
  {
    owner: 'AguiHandler',
    build: withRequired({ authenticate, agent, log: new MemoryTransport() }, (options) => createAguiHandler(options as never)),
    options: {
      ...runSurfaceOptions,
      toInput: { type: 'fn' },
      thinking: { type: 'enum', values: ['reasoning', 'text'] },
      cancelled: { type: 'enum', values: ['outcome', 'error'] },
      answerText: { type: 'fn' },
      metadata: { type: 'fn' },
      maxInputValues: count,
    },
  },
  {
    owner: 'ChatHandler',
    build: withRequired({ authenticate, agent, log: new MemoryTransport() }, (options) => createChatHandler(options as never)),
    options: { ...runSurfaceOptions, input: { type: 'fn' }, resultText: { type: 'fn' }, errorText: { type: 'fn' }, cursorMetadata: { type: 'bool' }, maxMessageParts: count },
  },
  {
    owner: 'connect()',
    build: buildNodeClient,
    options: { WebSocket: { type: 'fn' }, tokenIn: { type: 'enum', values: ['query', 'header'] } },
  },
  {
    owner: 'BaseAgent',
    build: (options) => new PlainAgent(options as never),
    options: {
      name: { type: 'str', min: 1, max: 128 },
      validateEvents: { type: 'bool' },
      redact: { type: 'obj' },
      'redact.input': { type: 'fn' },
      'redact.toolArgs': { type: 'fn' },
      'redact.toolResult': { type: 'fn' },
      'redact.output': { type: 'fn' },
      'redact.error': { type: 'fn' },
      instrumentation: { type: 'obj' },
      'instrumentation.run': { type: 'fn' },
      'instrumentation.tool': { type: 'fn' },
      // What a run calls on them (null or 5 failed the first run with a TypeError; tester round 6, f4).
      bridge: { type: 'like', methods: BRIDGE_METHODS },
      interaction: { type: 'like', methods: INTERACTION_METHODS },
      // Event limits: null was the default, messages named no owner.
      limits: { type: 'obj' },
      'limits.maxEventBytes': { type: 'int', min: 16 * 1024 },
      'limits.maxDepth': { type: 'int', min: 4 },
    },
  },
  {
    // Every option of the ModelAgent table of docs/agents.md (tester round 6, f5: they failed every run, or were ignored).
    owner: 'ModelAgent',
    // `model` is required: an undefined one keeps the mock's (as defineTool's required fields).
    build: (options) => new ModelAgent((options === null ? null : { model: mockModel, ...definedOf(options) }) as never),
    options: {
      model: { type: 'custom', accepts: (value) => (typeof value === 'string' && value.length > 0) || (typeof value === 'object' && value !== null && typeof (value as { doStream?: unknown }).doStream === 'function') },
      system: { type: 'custom', accepts: (value) => typeof value === 'string' || typeof value === 'function' },
      maxSteps: count,
      stopWhen: { type: 'custom', accepts: (value) => typeof value === 'function' || (Array.isArray(value) && value.length > 0 && value.every((c) => typeof c === 'function')) },
      maxRetries: count0,
      callSettings: { type: 'obj' },
      'callSettings.maxOutputTokens': count,
      'callSettings.temperature': anyNumber,
      'callSettings.topP': anyNumber,
      'callSettings.topK': anyNumber,
      'callSettings.presencePenalty': anyNumber,
      'callSettings.frequencyPenalty': anyNumber,
      'callSettings.seed': { type: 'custom', accepts: (value) => Number.isSafeInteger(value) },
      'callSettings.stopSequences': stringList,
      'callSettings.headers': { type: 'obj' },
      'callSettings.timeout': { type: 'custom', accepts: (value) => accepts(timer, value) || accepts({ type: 'obj' }, value) },
      'callSettings.timeout.totalMs': timer,
      'callSettings.timeout.stepMs': timer,
      'callSettings.timeout.chunkMs': timer,
      providerOptions: { type: 'obj' },
      activeTools: stringList,
      toolChoice: {
        type: 'custom',
        accepts: (value) => ['auto', 'none', 'required'].includes(value as string) || (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'tool' && typeof (value as { toolName?: unknown }).toolName === 'string' && (value as { toolName: string }).toolName.length > 0),
      },
      repairToolCall: { type: 'fn' },
      thinking: { type: 'obj' },
      'thinking.flush': { type: 'enum', values: ['sentence', 'step'] },
      'thinking.minChars': count0,
      'thinking.maxDelayMs': timer0,
      'thinking.maxChars': count,
      'thinking.reasoning': { type: 'bool' },
      'thinking.text': { type: 'enum', values: ['tool-steps', 'all', 'none'] },
      textStreaming: { type: 'enum', values: ['off', 'sentence', 'delta'] },
    },
  },
  {
    owner: 'defineTool()',
    nullField: 'definition',
    // Required fields have no default: an undefined one keeps the valid definition's.
    build: (options) => defineTool((options === null ? null : { ...tool, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) }) as never),
    options: {
      name: { type: 'str', min: 1, max: 128 },
      execute: { type: 'fn' },
      // Timers: at most 2^31 - 1 ms (Node fires a longer one after 1 ms); approvals travel as whole ms.
      timeoutMs: timer,
      needsApproval: { type: 'fnOrBool' },
      approvalTimeoutMs: { type: 'int', min: 1, max: MAX_TIMER_MS },
    },
  },
  {
    owner: 'RedisStreamsTransport',
    build: (options) =>
      resolveTransportOptions(
        options === null ? (null as never) : ({ ...options, cluster: { rootNodes: ['redis://127.0.0.1:7000'], ...(options.cluster as object) } } as never),
      ),
    options: { 'cluster.slotGroups': { type: 'int', min: 1, max: 1024 } },
  },
  {
    owner: 'ThreadRegistry',
    build: (options) => new ThreadRegistry(options as never),
    options: {
      maxRuns: count,
      finishedRunTtlMs: duration,
      maxThreads: count,
      threadTtlMs: duration,
      claimOnRegister: { type: 'bool' },
      now: { type: 'fn' },
    },
  },
  {
    owner: 'connect()',
    build: buildClient,
    options: {
      dedupeWindow: count,
      connectTimeoutMs: timer0,
      checkLifecycle: { type: 'bool' },
      onHistoryGap: { type: 'enum', values: ['resubscribe', 'stop'] },
      WebSocket: { type: 'fn' },
    },
  },
  {
    owner: 'connect()',
    nullField: 'reconnect',
    build: (options) => resolveReconnect(options === null ? (null as never) : (options.reconnect as never)),
    options: {
      'reconnect.initialDelayMs': timer0,
      'reconnect.maxDelayMs': timer0,
      'reconnect.factor': { type: 'num', min: 1, max: 1_000 },
      'reconnect.jitter': { type: 'bool' },
      'reconnect.maxAttempts': { type: 'attempts' },
    },
  },
  {
    // The factories of agentwire/otel and agentwire/metrics check their options as the constructors do.
    owner: 'otelInstrumentation()',
    build: (options) => otelInstrumentation(options as never),
    options: {
      tracer: { type: 'like', methods: ['startActiveSpan'] },
      providerName: { type: 'str', min: 1, max: 128 },
      captureToolContent: { type: 'bool' },
      maxContentLength: count0,
      recordUserId: { type: 'bool' },
      recordExceptions: { type: 'bool' },
    },
  },
  {
    owner: 'createMetricsRegistry()',
    build: (options) => createMetricsRegistry(options as never),
    options: {
      registry: { type: 'like', methods: ['registerMetric'] },
      prefix: { type: 'custom', accepts: (value) => typeof value === 'string' && /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(value) },
      bridges: { type: 'obj' },
      'bridges.main': { type: 'like', methods: ['metrics'] },
      gateways: { type: 'obj' },
      'gateways.ws': { type: 'like', methods: ['metrics'] },
    },
  },
  {
    owner: 'metricsHandler()',
    build: (options) => metricsHandler(new Registry(), options as never),
    options: { authorize: { type: 'fn' }, onError: { type: 'fn' } },
  },
  {
    // serve() of the run queues: checked before a worker exists (a number reached setBridge; null was none).
    owner: 'serve()',
    build: (options) => {
      const queue = new MemoryRunQueue();
      try {
        queue.serve({ agents: [new ScriptedAgent()] }, options as never);
      } finally {
        void queue.close();
      }
    },
    options: { concurrency: count, bridge: { type: 'like', methods: BRIDGE_METHODS } },
  },
  {
    owner: 'BullMQRunQueue',
    build: (options) => resolveQueueOptions(options as never),
    options: {
      queueName: { type: 'custom', accepts: (value) => typeof value === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(value) },
      log: { type: 'obj' },
      // Connection options, shared with the Redis transport and log.
      url: { type: 'custom', accepts: (value) => typeof value === 'string' && /^rediss?:\/\//.test(value) },
      keyPrefix: { type: 'custom', accepts: (value) => typeof value === 'string' },
      clientOptions: { type: 'obj' },
    },
  },
  {
    owner: 'AgentBridge',
    build: (options) => new AgentBridge(options as never),
    options: {
      transport: { type: 'like', methods: ['send', 'close'] },
      limits: { type: 'obj' },
      'limits.maxEventBytes': { type: 'int', min: 16 * 1024 },
      'limits.maxDepth': { type: 'int', min: 4 },
    },
  },
  {
    // The mappers the AG-UI and useChat handlers use, public for custom front ends.
    owner: 'AguiEventMapper',
    build: (options) => new AguiEventMapper(options as never),
    options: { thinking: { type: 'enum', values: ['reasoning', 'text'] }, cancelled: { type: 'enum', values: ['outcome', 'error'] }, answerText: { type: 'fn' } },
  },
  {
    owner: 'UiChunkMapper',
    build: (options) => new UiChunkMapper(options as never),
    options: { resultText: { type: 'fn' }, errorText: { type: 'fn' }, cursorMetadata: { type: 'bool' } },
  },
];

/** The hostile values of the brief, and their neighbours. */
const HOSTILE: unknown[] = [
  Number.NaN,
  -1,
  0,
  -0,
  0.5,
  1.5,
  Infinity,
  -Infinity,
  '10',
  '',
  'x',
  'resubscribe',
  'stop',
  null,
  {},
  [],
  [10],
  true,
  false,
  () => 10,
  Symbol('s'),
  10n,
  1e300,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  MAX_TIMER_MS,
  MAX_TIMER_MS + 1,
  Number.MIN_VALUE,
  Number.MAX_VALUE,
];
const anyValue = fc.oneof(
  fc.constantFrom(...HOSTILE),
  fc.integer({ min: -1_000, max: 1_000_000 }),
  fc.double({ noDefaultInfinity: false }),
  fc.double({ min: 0, max: 3e9, noNaN: true }),
  fc.string({ maxLength: 4 }),
  fc.boolean(),
);

/** The error `build` threw, or undefined. */
function thrownBy(build: () => void): unknown {
  try {
    build();
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('constructor options: one validator, every hostile value refused', () => {
  for (const subject of subjects) {
    for (const [option, kind] of Object.entries(subject.options)) {
      it(`${subject.owner} option ${option}: refuses what it does not accept with INVALID_OPTION naming it, accepts the rest`, () => {
        fc.assert(
          fc.property(anyValue, (value) => {
            const error = thrownBy(() => subject.build(optionsWith(option, value)));
            if (accepts(kind, value)) {
              expect(error, `${shown(value)} is valid`).toBeUndefined();
              return;
            }
            expect(error, `${shown(value)} is invalid`).toBeInstanceOf(ValidationError);
            const refusal = error as ValidationError;
            expect([refusal.code, refusal.field]).toEqual(['INVALID_OPTION', option]);
            expect(refusal.message.startsWith(`${subject.owner} option ${option} must be `)).toBe(true);
            expect(refusal.message.endsWith(`(got ${shown(value)})`)).toBe(true);
          }),
          { numRuns: 300, examples: HOSTILE.map((value) => [value]) },
        );
      });
    }
    it(`${subject.owner}: undefined means the default, and the options themselves must be an object`, () => {
      expect(thrownBy(() => subject.build({}))).toBeUndefined();
      for (const option of Object.keys(subject.options)) {
        if (option.includes('.')) continue;
        expect(thrownBy(() => subject.build({ [option]: undefined }))).toBeUndefined();
      }
      // The handlers check their required agent first; resolveReconnect names the client's reconnect option.
      const field = subject.nullField ?? { AguiHandler: 'agent', ChatHandler: 'agent' }[subject.owner] ?? 'options';
      expect(thrownBy(() => subject.build(null as never))).toMatchObject({ code: 'INVALID_OPTION', field });
    });
  }

  it('Redis read side: blockMs must stay at most half of node-redis socketTimeout (a blocking read would be dropped), on the log and in a transport\'s log option', () => {
    const clientOptions = { socket: { socketTimeout: 3_000 } };
    expect(thrownBy(() => resolveEventLogOptions({ clientOptions }))).toMatchObject({
      code: 'INVALID_OPTION',
      field: 'blockMs',
      message: "RedisEventLog option blockMs must be at most half of clientOptions.socket.socketTimeout (3000 ms): the tail's XREAD BLOCK keeps its socket silent that long (got 5000)",
    });
    expect(thrownBy(() => resolveTransportOptions({ clientOptions, log: { blockMs: 1_501 } }))).toMatchObject({ code: 'INVALID_OPTION', field: 'log.blockMs' });
    expect(resolveEventLogOptions({ clientOptions, blockMs: 1_500 }).blockMs).toBe(1_500);
    expect(resolveTransportOptions({ clientOptions, log: { blockMs: 1_000 } }).logOptions.blockMs).toBe(1_000);
    // No timeout (undefined or 0: node-redis's "none") leaves blockMs free.
    expect(resolveEventLogOptions({ clientOptions: { socket: { socketTimeout: 0 } } }).blockMs).toBe(5_000);
  });

  it('names are well-formed UTF-16: an agent or tool name with a lone surrogate is refused (a lost-worker reaper reading it back from Redis would write U+FFFD)', () => {
    expect(thrownBy(() => new PlainAgent({ name: 'bot\ud83e' } as never))).toMatchObject({ code: 'INVALID_OPTION', field: 'name' });
    expect(thrownBy(() => defineTool({ name: 'slow\ud83e', description: 'd', parameters: z.object({}), execute: () => 1 }))).toMatchObject({ code: 'INVALID_OPTION', field: 'name' });
    expect(thrownBy(() => new PlainAgent({ name: 'bot\ud83e\udd16' } as never))).toBeUndefined();
  });

  it('allowedOrigins: the same values refused with the same message on every surface, the answer and run endpoints included (a string is not a list)', () => {
    const log = new MemoryTransport();
    const surfaces: Array<[string, (allowedOrigins: unknown) => unknown]> = [
      ['WebSocketGateway', (allowedOrigins) => resolveGatewayOptions({ authenticate, allowedOrigins } as never)],
      ['SseGateway', (allowedOrigins) => new SseGateway({ authenticate, log, allowedOrigins } as never)],
      ['AguiHandler', (allowedOrigins) => createAguiHandler({ authenticate, agent, log, allowedOrigins } as never)],
      ['AnswerEndpoint', (allowedOrigins) => new AnswerEndpoint({ authenticate, log, allowedOrigins } as never)],
      ['RunsHandler', (allowedOrigins) => new RunsHandler({ authenticate, queue: new MemoryRunQueue(), allowedOrigins } as never)],
    ];
    for (const value of ['https://app.example.com', null, ['https://app.example.com/'], ['app.example.com'], [42], {}, 1]) {
      const messages = surfaces.map(([owner, build]) => {
        const error = thrownBy(() => build(value));
        expect(error, `${owner} allowedOrigins ${shown(value)}`).toMatchObject({ name: 'ValidationError', code: 'INVALID_OPTION', field: 'allowedOrigins' });
        return (error as Error).message.slice(owner.length);
      });
      expect(new Set(messages).size, `one message for ${shown(value)}`).toBe(1);
    }
    for (const value of [undefined, '*', ['https://app.example.com'], (origin: string) => origin === 'https://app.example.com']) {
      for (const [owner, build] of surfaces) expect(thrownBy(() => build(value)), `${owner} allowedOrigins ${shown(value)}`).toBeUndefined();
    }
  });

  it('AnswerEndpoint keeps its own default body bound (an answer is small: 64 KiB) and names itself in refusals', async () => {
    const log = new MemoryTransport();
    const endpoint = new AnswerEndpoint({ authenticate: () => ({ userId: 'u' }), log });
    const big = JSON.stringify({ threadId: 't', runId: 'r', requestId: 'q', approved: true, reason: 'x'.repeat(65 * 1024) });
    const response = await endpoint.web(new Request('http://localhost/answer', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: big }));
    expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([413, 'BODY_TOO_LARGE']);
    expect(thrownBy(() => new AnswerEndpoint({ authenticate, log, maxBodyBytes: null } as never))).toMatchObject({
      code: 'INVALID_OPTION',
      field: 'maxBodyBytes',
      message: 'AnswerEndpoint option maxBodyBytes must be a positive integer (got null)',
    });
    expect(thrownBy(() => new AnswerEndpoint({ authenticate: undefined, log } as never))).toMatchObject({ code: 'INVALID_OPTION', field: 'authenticate' });
    expect(thrownBy(() => new AnswerEndpoint({ authenticate, log: {} } as never))).toMatchObject({ code: 'INVALID_OPTION', field: 'log' });
  });

  it('reads the messages the brief names, e.g. maxTotalEvents 1.5 and threadTtlMs -1', () => {
    expect(thrownBy(() => new MemoryTransport({ maxTotalEvents: 1.5 }))).toMatchObject({
      name: 'ValidationError',
      code: 'INVALID_OPTION',
      field: 'maxTotalEvents',
      message: 'MemoryTransport option maxTotalEvents must be a positive integer (got 1.5)',
    });
    expect(thrownBy(() => new MemoryTransport({ threadTtlMs: -1 }))).toMatchObject({
      code: 'INVALID_OPTION',
      field: 'threadTtlMs',
      message: 'MemoryTransport option threadTtlMs must be a finite number of milliseconds > 0 (got -1)',
    });
    expect(thrownBy(() => new MemoryTransport({ now: 5 as never }))).toMatchObject({ field: 'now', message: 'MemoryTransport option now must be a function (got 5)' });
    expect(thrownBy(() => new AgentBridge({ drainTimeoutMs: 1e12 }))).toMatchObject({
      field: 'drainTimeoutMs',
      message: 'AgentBridge option drainTimeoutMs must be a finite number of milliseconds >= 0 and <= 2147483647 (got 1000000000000)',
    });
  });

  it('WebSocketGateway maxQueuedBytes: a positive integer, as the HTTP surfaces\' (default 4 MiB)', () => {
    for (const value of [null, -1, 1.5, 'x']) {
      expect(thrownBy(() => resolveGatewayOptions({ authenticate, maxQueuedBytes: value as never }))).toMatchObject({
        name: 'ValidationError',
        code: 'INVALID_OPTION',
        field: 'maxQueuedBytes',
        message: `WebSocketGateway option maxQueuedBytes must be a positive integer (got ${shown(value)})`,
      });
    }
    expect(resolveGatewayOptions({ authenticate }).maxQueuedBytes).toBe(4 * 1024 * 1024);
    expect(resolveGatewayOptions({ authenticate, maxQueuedBytes: 1 }).maxQueuedBytes).toBe(1);
  });

  it('keeps the unusual but valid values the suite uses', () => {
    let now = 0;
    expect(thrownBy(() => new MemoryTransport({ maxEventsPerThread: 1, maxBytesPerThread: 1, maxThreads: 1, maxTotalEvents: 1, maxTotalBytes: 1, threadTtlMs: 0.5, now: () => ++now }))).toBeUndefined();
    expect(thrownBy(() => new MemoryTransport({ maxTotalEvents: 1_000_000, maxBytesPerThread: 1024 * 2 ** 20, maxTotalBytes: 1024 * 2 ** 20 }))).toBeUndefined();
    expect(
      thrownBy(
        () =>
          new AgentBridge({
            highWaterMark: 0,
            drainTimeoutMs: 0,
            recoveryIntervalMs: 60_000,
            retry: { retries: 0, minTimeoutMs: 60_000, maxTimeoutMs: 60_000, factor: 1, randomize: false },
          }),
      ),
    ).toBeUndefined();
    // A first delay above the default cap raises the cap with it (it was silently capped at 2 s).
    expect(thrownBy(() => new AgentBridge({ retry: { minTimeoutMs: 5_000 } }))).toBeUndefined();
    expect(thrownBy(() => new AgentBridge({ retry: { factor: 0.5 } }))).toMatchObject({ field: 'retry.factor', message: 'AgentBridge option retry.factor must be a number from 1 to 1000 (got 0.5)' });
    expect(thrownBy(() => new AgentBridge({ transport: {} as never }))).toMatchObject({ code: 'INVALID_OPTION', field: 'transport' });
    expect(resolveQueueOptions({ retryLostRuns: { attempts: 10 } }).retryAttempts).toBe(10);
    // 11 was silently taken as 10.
    expect(thrownBy(() => resolveQueueOptions({ retryLostRuns: { attempts: 11 } }))).toMatchObject({ field: 'retryLostRuns.attempts' });
  });

  it('ThreadRegistry, AgentBridge registry and connect() refuse what the third attack round passed (null, -1, 1.5, x)', () => {
    for (const [option, value, message] of [
      ['maxRuns', -1, 'a positive integer (got -1)'],
      ['maxRuns', 1.5, 'a positive integer (got 1.5)'],
      ['maxThreads', 'bogus', 'a positive integer (got "bogus")'],
      ['finishedRunTtlMs', null, 'a finite number of milliseconds > 0 (got null)'],
      ['threadTtlMs', -1, 'a finite number of milliseconds > 0 (got -1)'],
      ['claimOnRegister', 'x', 'true or false (got "x")'],
    ] as const) {
      expect(thrownBy(() => new ThreadRegistry({ [option]: value } as never))).toMatchObject({
        name: 'ValidationError',
        code: 'INVALID_OPTION',
        field: option,
        message: `ThreadRegistry option ${option} must be ${message}`,
      });
    }
    expect(thrownBy(() => new ThreadRegistry({ maxRuns: 1, maxThreads: 1, finishedRunTtlMs: 0.5, threadTtlMs: 1, claimOnRegister: true, now: () => 0 }))).toBeUndefined();

    for (const registry of [null, -1, 1.5, 'x', {}, { register: () => undefined }, ThreadRegistry]) {
      expect(thrownBy(() => new AgentBridge({ registry: registry as never }))).toMatchObject({
        code: 'INVALID_OPTION',
        field: 'registry',
        message: `AgentBridge option registry must be a ThreadRegistry (got ${shown(registry)})`,
      });
    }
    const registry = new ThreadRegistry();
    expect(new AgentBridge({ registry }).registry).toBe(registry);
    expect(new AgentBridge({ registry: undefined }).registry).toBeInstanceOf(ThreadRegistry);
    // A registry of another copy of the package: the methods the bridge calls are there.
    const foreign = Object.fromEntries(['register', 'markStarted', 'resolve', 'delivered', 'forget', 'finish', 'isUsed'].map((name) => [name, () => undefined]));
    expect(thrownBy(() => new AgentBridge({ registry: foreign as never }))).toBeUndefined();

    for (const [option, value, message] of [
      ['dedupeWindow', -1, 'a positive integer (got -1)'],
      ['dedupeWindow', 1.5, 'a positive integer (got 1.5)'],
      ['dedupeWindow', 'x', 'a positive integer (got "x")'],
      ['dedupeWindow', null, 'a positive integer (got null)'],
      ['onHistoryGap', 'bogus', '"resubscribe" or "stop" (got "bogus")'],
      ['onHistoryGap', null, '"resubscribe" or "stop" (got null)'],
      ['checkLifecycle', 'no', 'true or false (got "no")'],
      ['checkLifecycle', null, 'true or false (got null)'],
      ['after', '', 'a cursor, 1-128 printable ASCII characters (got "")'],
      ['after', null, 'a cursor, 1-128 printable ASCII characters (got null)'],
      ['after', -1, 'a cursor, 1-128 printable ASCII characters (got -1)'],
      ['after', 'x'.repeat(129), `a cursor, 1-128 printable ASCII characters (got ${shown('x'.repeat(129))})`],
      // What the gateway would refuse with INVALID_CURSOR (its rule, ids/cursor-format.ts).
      ['after', 'é', 'a cursor, 1-128 printable ASCII characters (got "é")'],
      ['after', 'a b', 'a cursor, 1-128 printable ASCII characters (got "a b")'],
      ['WebSocket', 'x', 'a function (got "x")'],
      ['WebSocket', null, 'a function (got null)'],
    ] as const) {
      expect(thrownBy(() => buildClient({ [option]: value }))).toMatchObject({
        name: 'ValidationError',
        code: 'INVALID_OPTION',
        field: option,
        message: `connect() option ${option} must be ${message}`,
      });
    }
    for (const valid of [{ dedupeWindow: 1 }, { onHistoryGap: 'stop' }, { checkLifecycle: false }, { after: 'e:1' }, { after: 'x'.repeat(128) }, { reconnect: false }]) {
      expect(thrownBy(() => buildClient(valid))).toBeUndefined();
    }
    expect(thrownBy(() => buildClient({ dedupeWindow: undefined, onHistoryGap: undefined, checkLifecycle: undefined, after: undefined, reconnect: undefined }))).toBeUndefined();
    // The options object itself, and the checks that were there before.
    expect(thrownBy(() => new AgentwireClient('ws://h/ws', null as never))).toMatchObject({ code: 'INVALID_OPTION', field: 'options' });
    // A thread id the gateway would refuse (INVALID_FRAME, then reconnects forever) is refused here.
    for (const threadId of ['', 'a b', 'x'.repeat(129), 'é', undefined, 7]) {
      expect(thrownBy(() => buildClient({ threadId }))).toMatchObject({ code: 'INVALID_OPTION', field: 'threadId', message: expect.stringMatching(/^connect\(\) option threadId must be a thread id, 1 to 128 characters/) });
    }
    expect(thrownBy(() => buildClient({ threadId: 'x'.repeat(128) }))).toBeUndefined();
    expect(thrownBy(() => buildClient({ tokenIn: 'cookie' }))).toMatchObject({ code: 'INVALID_OPTION', field: 'tokenIn', message: 'connect() option tokenIn must be "query" or "header" (got "cookie")' });
    expect(thrownBy(() => buildClient({ token: 5 }))).toMatchObject({ code: 'INVALID_OPTION', field: 'token', message: 'connect() option token must be a string or a function returning one (got 5)' });
    expect(thrownBy(() => buildClient({ reconnect: null }))).toMatchObject({ code: 'INVALID_OPTION', field: 'reconnect' });
  });

  it('the gateways use the same checker (moved, re-exported from src/gateway/options.ts)', () => {
    expect(gatewayChecker).toBe(checker);
    expect(gatewayShown).toBe(shown);
    for (const [option, value] of [
      ['heartbeatIntervalMs', 1e12],
      ['closeTimeoutMs', null],
      ['maxConnections', '10'],
      ['authTimeoutMs', 1.5],
    ] as const) {
      const error = thrownBy(() => resolveFrontEndOptions({ authenticate, [option]: value } as never, { name: 'Test', heartbeatIntervalMs: 0, closeTimeoutMs: 0 }));
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'INVALID_OPTION', field: option });
      expect((error as Error).message).toMatch(new RegExp(`^Test option ${option} must be .*\\(got ${gatewayShown(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`));
    }
  });
});

describe('timeouts of tools and ask(): refused past 2^31 - 1 ms instead of firing after 1 ms', () => {
  const DAYS30 = 30 * 24 * 3600 * 1000;

  it('defineTool, addTool and the tools option refuse them at definition, with the common message', () => {
    expect(thrownBy(() => defineTool({ ...tool, timeoutMs: DAYS30 }))).toMatchObject({
      name: 'ValidationError',
      code: 'INVALID_OPTION',
      field: 'timeoutMs',
      message: `defineTool() option timeoutMs must be a finite number of milliseconds > 0 and <= ${MAX_TIMER_MS} (got ${DAYS30})`,
    });
    expect(thrownBy(() => defineTool({ ...tool, needsApproval: true, approvalTimeoutMs: DAYS30 }))).toMatchObject({
      field: 'approvalTimeoutMs',
      message: `defineTool() option approvalTimeoutMs must be an integer from 1 to ${MAX_TIMER_MS} (got ${DAYS30})`,
    });
    // A definition that skipped defineTool is checked when registered.
    expect(thrownBy(() => new PlainAgent({ tools: [{ ...tool, timeoutMs: -1 }] }))).toMatchObject({ code: 'INVALID_OPTION', field: 'timeoutMs' });
    expect(thrownBy(() => new PlainAgent().addTool({ ...tool, approvalTimeoutMs: Number.NaN }))).toMatchObject({ code: 'INVALID_OPTION', field: 'approvalTimeoutMs' });
    expect(thrownBy(() => new PlainAgent({ tools: 'x' as never }))).toMatchObject({ code: 'INVALID_OPTION', field: 'tools' });
    for (const parameters of [undefined, null, 5, {}, { '~standard': {} }]) {
      expect(thrownBy(() => defineTool({ ...tool, parameters: parameters as never }))).toMatchObject({ code: 'INVALID_OPTION', field: 'parameters' });
    }
    for (const description of [undefined, null, 5]) {
      expect(thrownBy(() => defineTool({ ...tool, description: description as never }))).toMatchObject({ code: 'INVALID_OPTION', field: 'description' });
    }
  });

  it('a tool with the longest timer runs its body to the end (no TOOL_TIMEOUT after 1 ms)', async () => {
    const bridge = new AgentBridge({ transport: new MemoryTransport() });
    const slow = defineTool({ ...tool, name: 'slow', timeoutMs: MAX_TIMER_MS, execute: async () => new Promise<string>((resolve) => setTimeout(() => resolve('done'), 20)) });
    class Caller extends BaseAgent<unknown, unknown> {
      protected async execute(): Promise<unknown> {
        return this.callTool('slow', {}).catch((error: { code?: string }) => `ERR ${error.code}`);
      }
    }
    const result = await new Caller({ bridge, tools: [slow] }).run('x', { userId: 'u', threadId: 't-long' });
    expect(result.output).toBe('done');
    await bridge.close();
  });

  it('ask(…, { timeoutMs }) refuses what a timer or pending.timeoutMs cannot hold, at the call (no question shown), and waits with the rest', async () => {
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const shownTimeouts: unknown[] = [];
    // The options ask() gets (not the run's input: a BigInt or a function cannot be an event).
    let askOptions: unknown;
    class Asker extends BaseAgent<unknown, unknown> {
      protected async execute(): Promise<unknown> {
        return this.ask('color?', z.string(), askOptions as never).catch((error: { code?: string; field?: string; message?: string }) => ({ ...error, message: error.message }));
      }
    }
    const asker = new Asker({ bridge });
    asker.on('tool_executing', (event) => shownTimeouts.push(event.data.pending?.timeoutMs));
    const valid = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= MAX_TIMER_MS;
    let thread = 0;
    for (const timeoutMs of [...HOSTILE, DAYS30, 60_000]) {
      const before = shownTimeouts.length;
      const controller = new AbortController();
      askOptions = { timeoutMs };
      const started = asker.run('x', { userId: 'u', threadId: `t-ask-${thread++}`, signal: controller.signal });
      if (valid(timeoutMs)) {
        // Waiting: the question is shown with the promised timeout; cancelling ends the run.
        await until(() => shownTimeouts.length > before, 'the question to be shown', 2_000);
        expect(shownTimeouts.at(-1)).toBe(timeoutMs);
        controller.abort();
        expect((await started).status).toBe('cancelled');
        continue;
      }
      const result = await started;
      expect(result.output, shown(timeoutMs)).toMatchObject({
        code: 'INVALID_OPTION',
        field: 'timeoutMs',
        message: `ask() option timeoutMs must be an integer from 1 to ${MAX_TIMER_MS} (got ${shown(timeoutMs)})`,
      });
      expect(shownTimeouts.length).toBe(before);
    }
    askOptions = null;
    const result = await asker.run('x', { userId: 'u', threadId: 't-ask-null' });
    expect(result.output).toMatchObject({ code: 'INVALID_OPTION', field: 'options' });
    await bridge.close();
  });
});

describe('close({ timeoutMs }) of run queues and workers: null is not the default', () => {
  it('refuses every hostile timeoutMs with INVALID_OPTION before closing, accepts 0 to 2^31 - 1 ms', async () => {
    await fc.assert(
      fc.asyncProperty(anyValue, async (value) => {
        const queue = new MemoryRunQueue();
        const worker = queue.serve({ agents: [new ScriptedAgent()] });
        for (const [owner, close] of [
          ['MemoryWorker', (options: unknown) => worker.close(options as never)],
          ['MemoryRunQueue', (options: unknown) => queue.close(options as never)],
        ] as const) {
          const error = await close({ timeoutMs: value }).then(() => undefined, (reason: unknown) => reason);
          if (accepts(timer0, value)) {
            expect(error).toBeUndefined();
            continue;
          }
          expect(error).toBeInstanceOf(ValidationError);
          expect(error).toMatchObject({ code: 'INVALID_OPTION', field: 'timeoutMs' });
          expect((error as Error).message).toBe(
            `${owner} close() option timeoutMs must be a finite number of milliseconds >= 0 and <= ${MAX_TIMER_MS} (got ${shown(value)})`,
          );
        }
        await queue.close();
      }),
      { numRuns: 100, examples: HOSTILE.map((value) => [value]) },
    );
    const queue = new MemoryRunQueue();
    await expect(queue.close(null as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', field: 'options' });
    await expect(queue.close()).resolves.toBeUndefined();
  });
});

describe('objects taken on trust before (tester round 6): refused at construction, not at the first run', () => {
  it('BaseAgent bridge and interaction: null, a number, a string or a stranger are INVALID_OPTION; a bridge and a log are taken', async () => {
    for (const [option, value, expected] of [
      ['bridge', null, 'an AgentBridge (got null)'],
      ['bridge', 5, 'an AgentBridge (got 5)'],
      ['bridge', new MemoryTransport(), 'an AgentBridge (got object)'],
      ['interaction', null, `an InteractionLog with ${INTERACTION_METHODS.join(', ')} (got null)`],
      ['interaction', 'x', `an InteractionLog with ${INTERACTION_METHODS.join(', ')} (got "x")`],
      ['interaction', new AgentBridge(), `an InteractionLog with ${INTERACTION_METHODS.join(', ')} (got object)`],
    ] as const) {
      expect(thrownBy(() => new PlainAgent({ name: 'a', [option]: value } as never))).toMatchObject({
        name: 'ValidationError',
        code: 'INVALID_OPTION',
        field: option,
        message: `BaseAgent option ${option} must be ${expected}`,
      });
    }
    const agent = new PlainAgent();
    expect(thrownBy(() => agent.setBridge(5 as never))).toMatchObject({ code: 'INVALID_OPTION', field: 'bridge', message: 'BaseAgent setBridge() option bridge must be an AgentBridge (got 5)' });
    expect(agent.bridge).toBeUndefined();
    // The real ones run: events reach the bridge's transport, the log is the agent's.
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const own = new MemoryTransport();
    const wired = new PlainAgent({ bridge, interaction: own });
    expect(wired.interaction).toBe(own);
    expect((await wired.run('x', { userId: 'u', threadId: 't-wired' })).status).toBe('succeeded');
    expect(transport.read('t-wired', 'u').map((event) => event.type)).toEqual(['agent_started', 'agent_completed']);
    expect(agent.setBridge(bridge).setBridge(undefined).bridge).toBeUndefined();
    await bridge.close();
  });

  it('ModelAgent: the values of the finding are refused naming the option, and a valid agent still runs', async () => {
    for (const [options, field, expected] of [
      [{ textStreaming: 'bogus' }, 'textStreaming', 'must be "off", "sentence" or "delta" (got "bogus")'],
      [{ textStreaming: null }, 'textStreaming', 'must be "off", "sentence" or "delta" (got null)'],
      [{ maxRetries: -3 }, 'maxRetries', 'must be a non-negative integer (got -3)'],
      [{ maxSteps: -1 }, 'maxSteps', 'must be a positive integer (got -1)'],
      [{ thinking: { flush: 'bogus' } }, 'thinking.flush', 'must be "sentence" or "step" (got "bogus")'],
      [{ thinking: { minChars: -5 } }, 'thinking.minChars', 'must be a non-negative integer (got -5)'],
      [{ thinking: null }, 'thinking', 'must be an object of flush, minChars, maxDelayMs, maxChars, reasoning, text (got null)'],
      [{ callSettings: { maxOutputTokens: 0 } }, 'callSettings.maxOutputTokens', 'must be a positive integer (got 0)'],
      [{ model: undefined }, 'model', 'must be an AI SDK LanguageModel: a model object with doStream, or a model id string (got undefined)'],
    ] as const) {
      expect(thrownBy(() => new ModelAgent({ model: mockModel, ...options } as never))).toMatchObject({
        name: 'ValidationError',
        code: 'INVALID_OPTION',
        field,
        message: `ModelAgent option ${field} ${expected}`,
      });
    }
    // A BaseAgent option is checked as BaseAgent's.
    expect(thrownBy(() => new ModelAgent({ model: mockModel, bridge: 5 } as never))).toMatchObject({ field: 'bridge', message: 'BaseAgent option bridge must be an AgentBridge (got 5)' });
    const transport = new MemoryTransport();
    const bridge = new AgentBridge({ transport });
    const model = new MockLanguageModelV3({
      doStream: async () => ({
        stream: convertArrayToReadableStream([
          { type: 'stream-start', warnings: [] },
          { type: 'text-start', id: 't' },
          { type: 'text-delta', id: 't', delta: 'Hello.' },
          { type: 'text-end', id: 't' },
          { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } } },
        ]),
      }),
    });
    const agent = new ModelAgent({ model, bridge, maxSteps: 1, maxRetries: 0, textStreaming: 'delta', thinking: { flush: 'step', minChars: 0, maxDelayMs: 0, maxChars: 1_000 }, toolChoice: 'none', activeTools: [] });
    const result = await agent.run('hi', { userId: 'u', threadId: 't-model' });
    expect([result.status, result.output]).toEqual(['succeeded', 'Hello.']);
    expect(transport.read('t-model', 'u').filter((event) => event.type === 'agent_thinking').map((event) => (event.data as { text: string }).text)).toEqual(['Hello.']);
    await bridge.close();
  });

  it('the scan: serve(), a transport\'s optional members, Redis clientOptions and null as BullMQ queueName are refused', async () => {
    const queue = new MemoryRunQueue();
    const agentWithoutBridge = new ScriptedAgent();
    expect(thrownBy(() => queue.serve({ agents: [agentWithoutBridge] }, { bridge: 5 as never }))).toMatchObject({ code: 'INVALID_OPTION', field: 'bridge', message: 'serve() option bridge must be an AgentBridge (got 5)' });
    expect(agentWithoutBridge.bridge).toBeUndefined();
    expect(thrownBy(() => queue.serve(null as never))).toMatchObject({ code: 'INVALID_OPTION', field: 'options' });
    expect(thrownBy(() => queue.serve({ agents: null as never }))).toMatchObject({ code: 'INVALID_OPTION', field: 'agents' });
    await queue.close();
    const send = async () => undefined;
    const close = async () => undefined;
    expect(thrownBy(() => new AgentBridge({ transport: { send } as never }))).toMatchObject({ field: 'transport', message: 'AgentBridge option transport must be a Transport with send(event) and close() (got object)' });
    for (const name of ['health', 'sendSync', 'hasRun']) {
      expect(thrownBy(() => new AgentBridge({ transport: { send, close, [name]: 5 } as never }))).toMatchObject({ code: 'INVALID_OPTION', field: `transport.${name}`, message: `AgentBridge option transport.${name} must be a function (got 5)` });
    }
    expect(thrownBy(() => new AgentBridge({ transport: { send, close, health: () => ({ ok: true }), hasRun: () => false } }))).toBeUndefined();
    for (const owner of ['RedisStreamsTransport', 'RedisEventLog'] as const) {
      const resolve = owner === 'RedisEventLog' ? resolveEventLogOptions : resolveTransportOptions;
      expect(thrownBy(() => resolve({ clientOptions: 'redis://x' as never }))).toMatchObject({ field: 'clientOptions', message: `${owner} option clientOptions must be an object of node-redis client options (got "redis://x")` });
      expect(thrownBy(() => resolve({ url: 'http://x' }))).toMatchObject({ field: 'url', message: `${owner} option url must be a redis:// or rediss:// URL (got "http://x")` });
    }
    expect(thrownBy(() => resolveQueueOptions({ queueName: null as never }))).toMatchObject({ field: 'queueName', message: 'BullMQRunQueue option queueName must be 1-64 letters, digits, _ . - (got null)' });
    expect(thrownBy(() => resolveQueueOptions({ retryLostRuns: null as never }))).toMatchObject({ field: 'retryLostRuns' });
    // RunsHandler calls status() and stats() of its queue too.
    const partial = { submit: async () => 'r', cancel: async () => 'cancelled' };
    for (const value of [null, 5, partial]) {
      expect(thrownBy(() => new RunsHandler({ authenticate, queue: value as never }))).toMatchObject({
        code: 'INVALID_OPTION',
        field: 'queue',
        message: `RunsHandler option queue is required: a RunQueue with submit, cancel, status, stats (got ${shown(value)})`,
      });
    }
  });

  it('WebSocketGateway server: null, 5 or a string are INVALID_OPTION before anything is created; attach() checks the same', async () => {
    for (const value of [null, 5, 'srv', {}]) {
      expect(thrownBy(() => new WebSocketGateway({ authenticate, server: value as never }))).toMatchObject({
        name: 'ValidationError',
        code: 'INVALID_OPTION',
        field: 'server',
        message: `WebSocketGateway option server must be an http.Server (got ${shown(value)})`,
      });
    }
    const server = createServer();
    const gateway = new WebSocketGateway({ authenticate, server });
    expect(server.listenerCount('upgrade')).toBe(1);
    expect(thrownBy(() => gateway.attach(5 as never))).toMatchObject({ code: 'INVALID_OPTION', field: 'server', message: 'WebSocketGateway attach() option server must be an http.Server (got 5)' });
    await gateway.close();
    expect(server.listenerCount('upgrade')).toBe(0);
  });
});
