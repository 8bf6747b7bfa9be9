/**
 * What the docs' code blocks leave to the reader, declared once with real types so a block that
 * misuses them still fails: your app, your token check, your model, UI callbacks, and the objects
 * an earlier block of the same page built (the README's `ResearchAgent`, its gateways).
 *
 * A script (no import/export), so these are globals every block sees; a block that declares the
 * same name shadows it. Keep this small: a block should import what it uses from agentwire.
 */
export const snippetContext = `

// Your HTTP app and auth (express/fastify/hono/plain node handler; your token verification).
declare const app: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
declare function verifyToken(token: string | undefined): Promise<{ id: string } | null>;
declare function verify(token: string | undefined): Promise<import('agentwire').Principal | null>;
declare const authenticate: import('agentwire').Authenticate;
declare const token: string;

// Your data sources (tools call them).
declare function fetchResults(query: string, options: { signal: AbortSignal }): Promise<string[]>;
declare function fetchWeather(city: string, options: { signal: AbortSignal }): Promise<{ city: string; tempC: number }>;

// Your UI.
declare function showThought(text: string): void;
declare function markTool(toolCallId: string, status: 'succeeded' | 'failed'): void;
declare function badge(status: import('agentwire/client').ClientStatus): void;
declare function render(value: unknown): void;
declare function saveCursor(cursor: string | undefined): void;
declare const threadId: string;
declare const chatId: string;
declare const partial: import('ai').UIMessage | undefined;

// A model and what a ModelAgent is given.
declare const model: import('ai').LanguageModel;
declare const system: string;
declare const tools: import('agentwire').AnyTool[];

// The README's agent (its first example): options are BaseAgentOptions.
declare const ResearchAgent: new (options?: import('agentwire').BaseAgentOptions) => ResearchAgent;
type ResearchAgent = import('agentwire').BaseAgent<{ question: string }, string>;
declare const agent: ResearchAgent;

// What the serving examples built.
declare const bridge: import('agentwire').AgentBridge;
declare const ws: import('agentwire/gateway/websocket').WebSocketGateway;
declare const sse: import('agentwire/gateway/sse').SseGateway;
declare const agui: import('agentwire/agui').AguiHandler;

// A provider package the examples name but this repo does not install.
declare module '@ai-sdk/openai' {
  export function openai(modelId: string): import('ai').LanguageModel;
}
`;
