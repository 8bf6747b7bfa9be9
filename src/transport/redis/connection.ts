import { createClient, createCluster, ErrorReply } from 'redis';
import { AgentwireError, TransportError } from '../../errors/index.js';
import { routingKey } from './cluster.js';
import type { ResolvedConnectionOptions } from './options.js';

/** Exponential backoff with jitter, never giving up until close(). */
function reconnectStrategy(options: ResolvedConnectionOptions) {
  const { reconnectMinDelayMs: min, reconnectMaxDelayMs: max } = options;
  return (retries: number) => Math.round(Math.min(max, min * 2 ** Math.min(retries, 20)) * (0.5 + Math.random() * 0.5));
}

function makeClient(options: ResolvedConnectionOptions, name: string) {
  return createClient({
    ...options.clientOptions,
    url: options.url,
    name,
    RESP: 2,
    // A command issued while disconnected fails at once: the bridge retries and buffers in order;
    // a queue here would hide the outage and hold every send.
    disableOfflineQueue: true,
    socket: {
      ...options.clientOptions?.socket,
      connectTimeout: options.connectTimeoutMs,
      reconnectStrategy: reconnectStrategy(options),
    },
  });
}

/**
 * A node-redis cluster client with the same policy per node connection. `lazy`: discover the
 * topology only and connect to a node when a command goes there (a tail's blocking reads).
 */
function makeCluster(options: ResolvedConnectionOptions, name: string, lazy: boolean) {
  const { url: _url, socket, ...nodeOptions } = options.clientOptions ?? {};
  const socketOptions = { ...socket, connectTimeout: options.connectTimeoutMs, reconnectStrategy: reconnectStrategy(options) };
  return createCluster({
    rootNodes: options.cluster!.rootNodes.map((url) => ({ url, socket: socketOptions })),
    defaults: { ...nodeOptions, name, disableOfflineQueue: true, socket: socketOptions } as never,
    RESP: 2,
    minimizeConnections: lazy,
  });
}

export type RedisClient = ReturnType<typeof makeClient>;
export type RedisClusterClient = ReturnType<typeof makeCluster>;

/**
 * One node-redis client with agentwire's connection policy: connects lazily, reconnects with
 * backoff forever, fails commands at once while disconnected, remembers its last error. With the
 * `cluster` option it is a node-redis cluster client instead: each command goes to the master of
 * the slot of its first key (see `routingKey`).
 */
export class RedisConnection {
  readonly client: RedisClient | RedisClusterClient;
  private readonly cluster: RedisClusterClient | undefined;
  private started = false;
  private closed = false;
  private everReady = false;
  private lastError: Error | undefined;
  private readyWaiters = new Set<() => void>();
  /** Times the connection was lost and re-established. */
  reconnects = 0;

  constructor(
    private readonly options: ResolvedConnectionOptions,
    readonly name: string,
    /** On a cluster: connect to a node only when a command goes there. */
    lazy = false,
  ) {
    this.cluster = options.cluster ? makeCluster(options, name, lazy) : undefined;
    this.client = this.cluster ?? makeClient(options, name);
    const onError = (error: Error) => {
      this.lastError = error;
      options.onError?.(error);
    };
    this.client.on('error', onError);
    // A cluster client reports its nodes' connection errors separately; the cluster itself is
    // "connected" once its topology is known (`connect`), a plain client once it is `ready`.
    if (this.cluster) this.cluster.on('node-error', onError);
    this.client.on(this.cluster ? 'connect' : 'ready', () => {
      if (this.everReady) this.reconnects++;
      this.everReady = true;
      this.lastError = undefined;
      const waiters = [...this.readyWaiters];
      this.readyWaiters.clear();
      for (const wake of waiters) wake();
    });
  }

  get isReady(): boolean {
    return !this.closed && this.client.isReady;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Starts connecting (once). Commands fail with a retryable error until the connection is ready. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    // connect() only settles once connected (or closed): the reconnect strategy never gives up.
    this.client.connect().catch((error: unknown) => {
      if (!this.closed) this.lastError = error instanceof Error ? error : new Error(String(error));
    });
  }

  /** Resolves true once the connection is ready, false after `timeoutMs` or on close. */
  waitReady(timeoutMs: number): Promise<boolean> {
    this.start();
    if (this.isReady) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ready: boolean) => {
        clearTimeout(timer);
        this.readyWaiters.delete(wake);
        resolve(ready);
      };
      const wake = () => done(this.isReady);
      const timer = setTimeout(() => done(this.isReady), timeoutMs);
      this.readyWaiters.add(wake);
    });
  }

  /** Sends a raw command (RESP2 replies); node-redis pipelines the commands issued in one tick. */
  send<T>(args: readonly string[]): Promise<T> {
    if (this.closed) return Promise.reject(closedError(this.name));
    if (!this.everReady && !this.client.isReady) {
      // The first connection is still being made: wait for it (bounded) rather than fail at startup.
      return this.waitReady(this.options.connectTimeoutMs).then(() => {
        if (this.closed) throw closedError(this.name);
        return this.command<T>(args);
      });
    }
    return this.command<T>(args);
  }

  /** Whether this is a connection to a Redis Cluster. */
  get isCluster(): boolean {
    return this.cluster !== undefined;
  }

  private command<T>(args: readonly string[]): Promise<T> {
    if (this.cluster) return this.cluster.sendCommand<T>(routingKey(args), false, args as string[]);
    return (this.client as RedisClient).sendCommand<T>(args as string[]);
  }

  /** Human-readable state for `health()`. */
  describe(): string {
    if (this.closed) return 'closed';
    if (this.client.isReady) return 'connected';
    const reason = this.lastError ? `: ${this.lastError.message}` : '';
    if (!this.started) return 'not connected yet';
    return (this.everReady ? 'reconnecting' : 'connecting') + reason;
  }

  /** A new connection with the same options (for blocking reads, which must not share a socket). */
  duplicate(name: string): RedisConnection {
    return new RedisConnection(this.options, name, true);
  }

  /** Closes gracefully (pending replies first), or at once when not connected. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wake of [...this.readyWaiters]) wake();
    if (!this.client.isOpen) return;
    if (this.client.isReady) {
      try {
        await this.client.close();
        return;
      } catch {
        // Fall through to destroy.
      }
    }
    this.destroy();
  }

  /** Drops the socket at once; commands in flight (a blocking read) reject. */
  destroy(): void {
    this.closed = true;
    for (const wake of [...this.readyWaiters]) wake();
    try {
      if (this.client.isOpen) this.client.destroy();
    } catch {
      // Already closed.
    }
  }
}

/** Replies that mean "Redis is there but cannot do it right now". */
const TRANSIENT_REPLIES = ['LOADING', 'BUSY', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'OOM', 'CLUSTERDOWN', 'NOREPLICAS', 'MISCONF'];

/** Whether an error reply's message means "Redis cannot do it right now" (retryable). */
export function isTransientReply(message: string): boolean {
  return TRANSIENT_REPLIES.some((prefix) => message.startsWith(prefix));
}

/**
 * Maps whatever a Redis command threw to one of our errors: connection failures and transient
 * server states are retryable (`REDIS_UNAVAILABLE`); other error replies are not (`REDIS_ERROR`).
 */
export function toTransportError(error: unknown, what: string): AgentwireError {
  if (error instanceof AgentwireError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ErrorReply) {
    const transient = isTransientReply(message);
    return new TransportError(`${what}: Redis replied ${message}`, {
      code: transient ? 'REDIS_UNAVAILABLE' : 'REDIS_ERROR',
      retryable: transient,
      cause: error,
    });
  }
  return new TransportError(`${what}: Redis is unreachable (${message})`, { code: 'REDIS_UNAVAILABLE', retryable: true, cause: error });
}

export function closedError(name: string): TransportError {
  return new TransportError(`${name} is closed`, { code: 'TRANSPORT_CLOSED', retryable: false });
}
