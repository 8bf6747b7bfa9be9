/**
 * A model-driven agent on both ends of the Vercel AI SDK:
 * 1. `ModelAgent`: a model, a system prompt and our zod tools; the run streams the five events.
 * 2. `createChatHandler`: the same agent served as the AI SDK UI message stream, read here with the
 *    AI SDK's own `DefaultChatTransport` + `readUIMessageStream` (what `useChat` uses).
 *
 *   tsx examples/model-agent.ts                            # scripted model, no API key needed
 *   AI_GATEWAY_API_KEY=… tsx examples/model-agent.ts       # a real model via the AI SDK gateway (MODEL=openai/gpt-4.1-mini)
 *   OPENAI_API_KEY=… tsx examples/model-agent.ts           # needs `npm i @ai-sdk/openai` (MODEL=gpt-4.1-mini)
 *   tsx examples/model-agent.ts --serve                    # keep serving POST /api/chat for a useChat front end
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { DefaultChatTransport, readUIMessageStream, simulateReadableStream, type LanguageModel, type UIMessage } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { ModelAgent, createChatHandler } from '../src/ai-sdk/index.js';
import { AgentBridge, MemoryTransport, defineTool, tokenFrom, validateLifecycle, type AgentEvent } from '../src/index.js';

const getWeather = defineTool({
  name: 'get_weather',
  description: 'Current weather of a city',
  parameters: z.object({ city: z.string().min(1).describe('City name, e.g. "Paris"') }),
  async execute({ city }) {
    const tempC = 12 + (city.length * 7) % 15; // a stand-in for a real weather API
    return { city, tempC, conditions: tempC > 20 ? 'sunny' : 'cloudy' };
  },
});

// ── 1. The agent ────────────────────────────────────────────────────────────────────────────────
const transport = new MemoryTransport();
const bridge = new AgentBridge({ transport });
const agent = new ModelAgent({
  name: 'weather',
  model: await chooseModel(),
  system: 'You are a weather assistant. Use get_weather for current conditions, then answer in one sentence.',
  tools: [getWeather],
  bridge,
  maxSteps: 5,
  thinking: { flush: 'sentence' },
});
agent.on('event', printEvent);

const result = await agent.run('What is the weather in Paris?', { userId: 'alice', threadId: 'weather-1' });
console.log(`\n→ ${result.status}: ${result.output ?? result.error?.message}`);
console.log(`  lifecycle valid: ${validateLifecycle(transport.read('weather-1', 'alice')).ok}, usage: ${JSON.stringify(result.usage)}\n`);

// ── 2. Serving useChat ──────────────────────────────────────────────────────────────────────────
const chat = createChatHandler({
  agent,
  log: transport,
  authenticate: (req) => (tokenFrom(req) === 'demo-token' ? { userId: 'alice' } : null),
});
const server = createServer((req, res) => {
  if (!chat.handle(req, res)) res.writeHead(404).end();
});
await new Promise<void>((resolve) => server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve));
const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/chat`;

// The client side, exactly what useChat does under the hood.
const chatTransport = new DefaultChatTransport<UIMessage>({ api, headers: { authorization: 'Bearer demo-token' } });
const stream = await chatTransport.sendMessages({
  chatId: 'weather-2',
  messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'And in Lisbon?' }] }],
  trigger: 'submit-message',
  messageId: undefined,
  abortSignal: undefined,
});
let message: UIMessage | undefined;
for await (const state of readUIMessageStream({ stream })) message = state;
console.log(`useChat message ${message?.id}:`);
for (const part of message?.parts ?? []) console.log(`  ${describePart(part)}`);

if (process.argv.includes('--serve')) {
  console.log(`\nServing useChat at ${api} (Authorization: Bearer demo-token); resume: GET ${api}/:id/stream. Ctrl-C to stop.`);
} else {
  await chat.close();
  server.close();
  await bridge.close();
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────

/** A real provider when one is configured, else a scripted model (the AI SDK's test model). */
async function chooseModel(): Promise<LanguageModel> {
  if (process.env.AI_GATEWAY_API_KEY) return process.env.MODEL ?? 'openai/gpt-4.1-mini';
  if (process.env.OPENAI_API_KEY) {
    try {
      const specifier = '@ai-sdk/openai'; // optional: not a dependency of agentwire
      const { openai } = (await import(specifier)) as { openai: (modelId: string) => LanguageModel };
      return openai(process.env.MODEL ?? 'gpt-4.1-mini');
    } catch {
      console.warn('OPENAI_API_KEY is set but @ai-sdk/openai is not installed (npm i @ai-sdk/openai): using the scripted model.\n');
    }
  }
  return scriptedWeatherModel();
}

/**
 * Streams like a model would: first reasoning, a word of progress and a `get_weather` call for the
 * city in the user's message; once the tool result is in the prompt, the answer.
 */
function scriptedWeatherModel(): LanguageModel {
  const usage = (input: number, output: number) => ({
    inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: output, text: output, reasoning: undefined },
  });
  const words = (id: string, type: 'text' | 'reasoning', sentence: string) => [
    { type: `${type}-start` as const, id },
    ...sentence.split(/(?<= )/).map((delta) => ({ type: `${type}-delta` as const, id, delta })),
    { type: `${type}-end` as const, id },
  ];
  return new MockLanguageModelV3({
    provider: 'scripted',
    modelId: 'weather-demo',
    doStream: async ({ prompt }) => {
      const toolMessage = prompt.find((message) => message.role === 'tool');
      const userText = JSON.stringify(prompt.filter((message) => message.role === 'user').at(-1)?.content ?? '');
      const city = /in ([A-Z][a-zA-Z]+)/.exec(userText)?.[1] ?? 'Paris';
      const result = toolMessage?.content.find((part) => part.type === 'tool-result');
      const weather = result?.output.type === 'json' ? (result.output.value as { city: string; tempC: number; conditions: string }) : undefined;
      const chunks = weather
        ? [...words('a', 'text', `It is ${weather.tempC}°C and ${weather.conditions} in ${weather.city} right now.`)]
        : [
            ...words('r', 'reasoning', `The user asks about the weather in ${city}. I should look up the current conditions rather than guess.`),
            ...words('t', 'text', 'Let me check.'),
            { type: 'tool-call' as const, toolCallId: `call-${city}`, toolName: 'get_weather', input: JSON.stringify({ city }) },
          ];
      const finishReason = weather ? 'stop' : 'tool-calls';
      return {
        stream: simulateReadableStream({
          chunkDelayInMs: 15,
          chunks: [{ type: 'stream-start' as const, warnings: [] }, ...chunks, { type: 'finish' as const, finishReason: { unified: finishReason, raw: finishReason }, usage: usage(120, 30) }],
        }),
      };
    },
  });
}

function printEvent(event: AgentEvent): void {
  const detail =
    event.type === 'agent_thinking'
      ? JSON.stringify(event.data.text)
      : event.type === 'tool_executing'
        ? `${event.data.tool}(${JSON.stringify(event.data.args)})`
        : event.type === 'tool_completed'
          ? `${event.data.tool} ${event.data.status} in ${event.data.durationMs} ms`
          : event.type === 'agent_completed'
            ? event.data.status
            : '';
  console.log(`#${event.seq} ${event.type.padEnd(15)} ${detail}`);
}

function describePart(part: UIMessage['parts'][number]): string {
  if (part.type === 'text' || part.type === 'reasoning') return `${part.type}: ${part.text}`;
  if ('toolCallId' in part && 'state' in part) return `${part.type}: ${part.state} ${JSON.stringify('output' in part ? part.output : undefined)}`;
  return part.type;
}
