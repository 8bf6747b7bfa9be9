import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AbstractChat,
  DefaultChatTransport,
  readUIMessageStream,
  type ChatInit,
  type ChatState,
  type ChatStatus,
  type UIMessage,
  type UIMessageChunk,
} from 'ai';
import { convertArrayToReadableStream } from 'ai/test';
import { AGENTWIRE_CURSOR_HEADER, createChatHandler, UiChunkMapper, type ChatHandler, type ChatHandlerOptions } from '../../src/ai-sdk/index.js';
import { tokenFrom, type Authenticate, type LogEntry } from '../../src/index.js';

/** Bearer token → user: the test's `Authenticate` hook. */
export const TOKENS: Record<string, string> = { 'alice-token': 'alice', 'bob-token': 'bob' };

export interface ChatServer {
  url: string;
  handler: ChatHandler;
  close(): Promise<void>;
}

/** The test's `Authenticate` hook: `Bearer alice-token` is alice, `Bearer bob-token` bob. */
export const chatAuthenticate: Authenticate = (req) => {
  const userId = TOKENS[tokenFrom(req) ?? ''];
  return userId ? { userId } : null;
};

/** A real `node:http` server on 127.0.0.1 (port 0) serving `createChatHandler` at /api/chat. */
export async function startChatServer(options: Omit<ChatHandlerOptions, 'authenticate'> & Partial<Pick<ChatHandlerOptions, 'authenticate'>>): Promise<ChatServer> {
  const handler = createChatHandler({ authenticate: chatAuthenticate, ...options } as ChatHandlerOptions);
  const server: Server = createServer((req, res) => {
    if (!handler.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    handler,
    async close() {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function userMessage(text: string, id = `u-${text.length}`): UIMessage {
  return { id, role: 'user', parts: [{ type: 'text', text }] };
}

/** Reads a UI message stream with the AI SDK's own reader; returns the last message state. */
export async function readMessage(stream: ReadableStream<UIMessageChunk>, message?: UIMessage, onError?: (error: unknown) => void): Promise<UIMessage | undefined> {
  let last: UIMessage | undefined;
  for await (const state of readUIMessageStream({ stream, ...(message && { message }), ...(onError && { onError }) })) last = state;
  return last;
}

/** Tees the chunks of a stream into `into` while passing them on. */
export function recordChunks(stream: ReadableStream<UIMessageChunk>, into: UIMessageChunk[]): ReadableStream<UIMessageChunk> {
  return stream.pipeThrough(
    new TransformStream<UIMessageChunk, UIMessageChunk>({
      transform(chunk, controller) {
        into.push(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
}

/** All chunks of one run, from its events in the log (the uninterrupted reference stream). */
export function chunksOfRun(entries: readonly LogEntry[], runId: string): UIMessageChunk[] {
  const mapper = new UiChunkMapper();
  return entries.filter((entry) => entry.event.runId === runId).flatMap((entry) => mapper.map(entry.event, entry.cursor));
}

/**
 * What `GET {api}/:chatId/stream` sends (with the cursor, if any), read with the AI SDK's own
 * `DefaultChatTransport.reconnectToStream`: the chunks, `'none'` for 204, or the refusal's status.
 */
export async function resumedChunks(
  api: string,
  token: string,
  chatId: string,
  cursor: string | undefined,
  /** Stop (and cancel the stream) after this many chunks: a run that is still going never ends its stream. */
  limit = Infinity,
): Promise<UIMessageChunk[] | 'none' | number> {
  let status = 0;
  const transport = new DefaultChatTransport<UIMessage>({
    api,
    headers: { authorization: `Bearer ${token}`, ...(cursor !== undefined && { [AGENTWIRE_CURSOR_HEADER]: cursor }) },
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      status = response.status;
      return response;
    },
  });
  let stream: ReadableStream<UIMessageChunk> | null;
  try {
    stream = await transport.reconnectToStream({ chatId });
  } catch {
    return status;
  }
  if (!stream) return 'none';
  const chunks: UIMessageChunk[] = [];
  if (limit <= 0) {
    await stream.cancel();
    return chunks;
  }
  for await (const chunk of stream as unknown as AsyncIterable<UIMessageChunk>) {
    chunks.push(chunk);
    if (chunks.length >= limit) break;
  }
  return chunks;
}

/** The message the AI SDK's reader builds from chunks. */
export function messageFrom(chunks: UIMessageChunk[], message?: UIMessage): Promise<UIMessage | undefined> {
  return readMessage(convertArrayToReadableStream(chunks), message);
}

/**
 * The AI SDK's `AbstractChat` (what `useChat` wraps) with an in-memory `ChatState`, the same
 * extension point the React/Vue/Svelte bindings implement.
 */
export class NodeChat extends AbstractChat<UIMessage> {
  constructor(init: ChatInit<UIMessage>) {
    super({ ...init, state: new ArrayChatState(init.messages ?? []) });
  }
}

class ArrayChatState implements ChatState<UIMessage> {
  status: ChatStatus = 'ready';
  error: Error | undefined = undefined;
  constructor(public messages: UIMessage[]) {}
  pushMessage = (message: UIMessage) => {
    this.messages = [...this.messages, message];
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index: number, message: UIMessage) => {
    this.messages = [...this.messages.slice(0, index), message, ...this.messages.slice(index + 1)];
  };
  snapshot = <T>(thing: T): T => structuredClone(thing);
}

/**
 * A `fetch` whose POST response bodies break with a network error (a `TypeError`, as `fetch` raises
 * on a dropped connection) right after the SSE event containing `marker`: a real disconnect seen by
 * a real client. Only whole SSE events are passed on.
 */
export function fetchCuttingPostsAfter(marker: string): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (init?.method !== 'POST' || !response.body) return response;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let pending = '';
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        pending += decoder.decode(value, { stream: true });
        const complete = pending.lastIndexOf('\n\n') + 2;
        if (complete < 2) return;
        const events = pending.slice(0, complete);
        pending = pending.slice(complete);
        const at = events.indexOf(marker);
        if (at < 0) return controller.enqueue(encoder.encode(events));
        controller.enqueue(encoder.encode(events.slice(0, events.indexOf('\n\n', at) + 2)));
        await reader.cancel();
        controller.error(new TypeError('network error: connection reset'));
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
}
