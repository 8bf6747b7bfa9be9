import { verifyEvents, type BaseEvent } from '@ag-ui/client';
import { EventSchema } from '@ag-ui/core/schemas';
import { DefaultChatTransport, type UIMessage, type UIMessageChunk } from 'ai';
import { from, lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AguiEventMapper, createAguiHandler, type AguiHandler } from '../../src/agui/index.js';
import type { ChatRequest } from '../../src/ai-sdk/index.js';
import { AgentBridge, BaseAgent, DEFAULT_JSON_LIMITS, MemoryTransport, defineTool, validateLifecycle, type ErrorContext, type EventLog, type LogEntry, type Transport } from '../../src/index.js';
import { RedisEventLog, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { chatAuthenticate, chunksOfRun, readMessage, recordChunks, resumedChunks, startChatServer, userMessage, type ChatServer } from '../helpers/ai-chat.js';
import { Exchange, post } from '../helpers/run-surfaces.js';
import { REDIS_URL, deletePrefix, describeWithRedis, probeRedis, testPrefix } from '../helpers/redis-env.js';

/**
 * A live AG-UI or useChat stream shows exactly what the log holds. Events are serialized (and
 * checked against the limits) once, where they are built; a value whose getter reads differently
 * afterwards (8 MiB instead of 'small', a BigInt instead of 'ok') must not reach a front end
 * through a mapper that reads the agent's object again. Real handlers over loopback, read by
 * @ag-ui's verifier over raw SSE and by the AI SDK's own DefaultChatTransport + readUIMessageStream,
 * on the memory log (live entries) and on the Redis log (entries read back from the stream).
 */

type Kind = 'grow' | 'flip';
type Where = 'tool' | 'output';

const EIGHT_MIB = 8 * 1024 * 1024;

/** `v` reads 'small' the first time (when the event is serialized), 8 MiB of text after. */
function growing(): { ok: number; v: string } {
  let reads = 0;
  return {
    ok: 1,
    get v() {
      return ++reads === 1 ? 'small' : 'X'.repeat(EIGHT_MIB);
    },
  };
}

/** `v` reads 'ok' the first time, a BigInt after. */
function flipping(): { v: unknown } {
  let reads = 0;
  return {
    get v() {
      return ++reads === 1 ? 'ok' : 10n;
    },
  };
}

const shifting = (kind: Kind) => (kind === 'grow' ? growing() : flipping());
/** What the log holds for each (the first read). */
const LOGGED: Record<Kind, unknown> = { grow: { ok: 1, v: 'small' }, flip: { v: 'ok' } };

class Shifty extends BaseAgent<{ kind: Kind; where: Where }, unknown> {
  constructor(bridge: AgentBridge) {
    super({
      name: 'shifty',
      bridge,
      tools: [
        defineTool({ name: 'shift', description: 'returns a value that reads differently later', parameters: z.object({ kind: z.enum(['grow', 'flip']) }), execute: ({ kind }) => shifting(kind) }),
      ],
    });
  }

  protected async execute({ kind, where }: { kind: Kind; where: Where }): Promise<unknown> {
    if (where === 'output') return shifting(kind);
    await this.callTool('shift', { kind });
    return 'done';
  }
}

const inputSchema = z.object({ kind: z.enum(['grow', 'flip']), where: z.enum(['tool', 'output']) });

/** The log's own record of the shifting value: the tool's result or the run's. */
function loggedValue(entries: LogEntry[], where: Where): unknown {
  const type = where === 'tool' ? 'tool_completed' : 'agent_completed';
  const json = entries.find((entry) => entry.event.type === type)!.json;
  return (JSON.parse(json) as { data: { result: unknown } }).data.result;
}

const cases = (['tool', 'output'] as Where[]).flatMap((where) => (['grow', 'flip'] as Kind[]).map((kind) => ({ kind, where })));
const label: Record<Kind, string> = { grow: "'small', then 8 MiB", flip: "'ok', then a BigInt" };

type LogKind = 'memory' | 'redis';

/** The handlers' log and the bridge's transport: one memory transport, or a Redis writer and a Redis reader. */
async function logs(kind: LogKind): Promise<{ transport: Transport; log: EventLog; close(): Promise<void> }> {
  if (kind === 'memory') {
    const memory = new MemoryTransport();
    return { transport: memory, log: memory, close: () => memory.close() };
  }
  const prefix = testPrefix('live-equals-log');
  const writer = new RedisStreamsTransport({ url: REDIS_URL, keyPrefix: prefix });
  const reader = new RedisEventLog({ url: REDIS_URL, keyPrefix: prefix, blockMs: 200 });
  return {
    transport: writer,
    log: reader,
    async close() {
      await reader.close();
      await writer.close();
      await deletePrefix(prefix);
    },
  };
}

function suite(logKind: LogKind): void {
  let log: EventLog;
  let closeLogs: () => Promise<void>;
  let bridge: AgentBridge;
  let chat: ChatServer;
  let agui: AguiHandler;
  let aguiBase: string;
  const errors: string[] = [];

  beforeAll(async () => {
    const made = await logs(logKind);
    log = made.log;
    closeLogs = made.close;
    bridge = new AgentBridge({ transport: made.transport });
    const agent = new Shifty(bridge);
    chat = await startChatServer({
      agent,
      log,
      heartbeatIntervalMs: 0,
      input: (request: ChatRequest) => inputSchema.parse(request.body),
      onError: (error: unknown, context: ErrorContext) => void errors.push(`chat ${context.stage}: ${String(error)}`),
    } as never);
    agui = createAguiHandler({
      agent,
      log,
      authenticate: chatAuthenticate,
      heartbeatIntervalMs: 0,
      toInput: (input) => inputSchema.parse(input.forwardedProps),
      onError: (error, context) => void errors.push(`agui ${context.stage}: ${String(error)}`),
    });
    aguiBase = `http://127.0.0.1:${(await agui.listen()).port}`;
  });

  afterAll(async () => {
    await chat.close();
    await agui.close();
    await bridge.close();
    await closeLogs();
  });

  /** The thread's entries as alice's replay gets them. */
  async function entriesOf(threadId: string): Promise<LogEntry[]> {
    const subscribed = await log.subscribe({ userId: 'alice', threadId }, { onEntries: () => undefined });
    if (subscribed.status !== 'subscribed') throw new Error(`no log for ${threadId}`);
    subscribed.subscription.close();
    return subscribed.replay;
  }

  describe(`${logKind} log`, () => {
    describe.each(cases)('AG-UI, $where value reading $kind', ({ kind, where }) => {
      it(`the live frames equal the replay's and the mapping of the log; nothing past maxEventBytes; no onError (${label[kind]})`, async () => {
        errors.length = 0;
        const threadId = `agui-${kind}-${where}`;
        const runId = `run-agui-${kind}-${where}`;
        const live = post({ url: `${aguiBase}/agui` }, 'alice-token', { threadId, runId, messages: [], forwardedProps: { kind, where } });
        expect(await live.ended).toBe('end');
        expect(live.status).toBe(200);
        const data = live.frames.map((frame) => JSON.parse(frame.data) as BaseEvent & Record<string, unknown>);
        for (const event of data) expect(EventSchema.safeParse(event).error).toBeUndefined();
        await lastValueFrom(from(data).pipe(verifyEvents(), toArray()));

        const entries = await entriesOf(threadId);
        expect(validateLifecycle(entries.map((entry) => entry.event))).toEqual({ ok: true, runs: 1 });
        expect(loggedValue(entries, where)).toEqual(LOGGED[kind]);
        // Frame for frame what the mapper makes of the log's events.
        const mapper = new AguiEventMapper();
        expect(data).toEqual(JSON.parse(JSON.stringify(entries.flatMap((entry) => mapper.map(entry.event)))));
        if (where === 'tool') {
          expect(data.find((event) => event.type === 'TOOL_CALL_RESULT')?.content).toBe(JSON.stringify(LOGGED[kind]));
        } else {
          expect(data.find((event) => event.type === 'RUN_FINISHED')?.result).toEqual(LOGGED[kind]);
        }
        for (const frame of live.frames) expect(frame.data.length).toBeLessThan(DEFAULT_JSON_LIMITS.maxBytes);

        // The replay of the same run: the same frames, ids included.
        const replay = new Exchange(`${aguiBase}/agui?threadId=${threadId}&runId=${runId}`, { headers: { Authorization: 'Bearer alice-token' } });
        expect(await replay.ended).toBe('end');
        expect(replay.frames).toEqual(live.frames);
        expect(errors).toEqual([]);
      });
    });

    describe.each(cases)('useChat, $where value reading $kind', ({ kind, where }) => {
      it(`the live chunks equal the replay's and the mapping of the log; the message is complete; nothing past maxEventBytes; no onError (${label[kind]})`, async () => {
        errors.length = 0;
        const chatId = `chat-${kind}-${where}`;
        const api = `${chat.url}/api/chat`;
        const client = new DefaultChatTransport<UIMessage>({ api, headers: { authorization: 'Bearer alice-token' }, body: { kind, where } });
        const chunks: UIMessageChunk[] = [];
        const clientErrors: unknown[] = [];
        const stream = await client.sendMessages({ chatId, messages: [userMessage('go')], trigger: 'submit-message', messageId: undefined, abortSignal: undefined });
        const message = await readMessage(recordChunks(stream, chunks), undefined, (error) => clientErrors.push(error));
        expect(clientErrors).toEqual([]);

        const entries = await entriesOf(chatId);
        const runId = entries[0]!.event.runId;
        expect(validateLifecycle(entries.map((entry) => entry.event))).toEqual({ ok: true, runs: 1 });
        expect(loggedValue(entries, where)).toEqual(LOGGED[kind]);
        expect(chunks).toEqual(chunksOfRun(entries, runId));
        expect(chunks.at(-1)).toMatchObject({ type: 'finish', finishReason: 'stop' });
        if (where === 'tool') {
          expect(chunks.find((chunk) => chunk.type === 'tool-output-available')).toMatchObject({ output: LOGGED[kind] });
          expect(message?.parts.find((part) => part.type === 'tool-shift')).toMatchObject({ state: 'output-available', output: LOGGED[kind] });
        } else {
          const answer = message?.parts.filter((part) => part.type === 'text').map((part) => part.text).join('');
          expect(answer).toBe(JSON.stringify(LOGGED[kind]));
        }
        for (const chunk of chunks) expect(JSON.stringify(chunk).length).toBeLessThan(DEFAULT_JSON_LIMITS.maxBytes);

        // The replay of the run from its first event on: the same chunks after that event's.
        const replayed = await resumedChunks(api, 'alice-token', chatId, entries[0]!.cursor);
        const firstChunks = chunksOfRun(entries.slice(0, 1), runId).length;
        expect(replayed).toEqual(chunks.slice(firstChunks));
        expect(errors).toEqual([]);
      });
    });
  });
}

const availability = await probeRedis();
describe('live streams show what the log holds (values that read differently after the event was built)', () => {
  suite('memory');
});
describeWithRedis('live streams show what the log holds, Redis log', availability, () => {
  suite('redis');
});
