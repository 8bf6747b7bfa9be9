import { AsyncResource } from 'node:async_hooks';
import { asSchema, jsonSchema, tool, type FlexibleSchema, type JSONSchema7, type ToolSet } from 'ai';
import type { AnyTool } from '../../agent/tool.js';
import { jsonSchemaOf } from '../../agent/json-schema.js';
import type { ToolSequencer } from './tool-sequencer.js';

/** The part of a `BaseAgent` a model run drives. Every `BaseAgent` has it. */
export interface ModelDriver {
  think(text: string, step?: number): Promise<void>;
  /** Streams answer text (`BaseAgent.streamText`); needed for `textStreaming`. */
  streamText?(delta: string, options?: { step?: number }): Promise<void>;
  callTool<Result = unknown>(name: string, args: unknown): Promise<Result>;
  reportUsage(usage: { inputTokens: number; outputTokens: number }): void;
  listTools(): AnyTool[];
}

/**
 * Describes our zod-declared tools to the AI SDK. Each `execute` goes through `driver.callTool`,
 * so validation, timing, events, timeouts and errors come from the core; a failure rejects and the
 * AI SDK sends it back to the model as a tool error result.
 *
 * The AI SDK sees the JSON Schema of the arguments but does not validate them: `callTool` does, so
 * arguments the model got wrong still produce a (failed) `tool_executing`/`tool_completed` pair and
 * the model receives our validation message, naming the field.
 *
 * Must be called inside the run: the `execute` functions are bound to the run's async context.
 */
export function toAiSdkTools(driver: ModelDriver, tools: readonly AnyTool[], sequencer: ToolSequencer): ToolSet {
  const set: ToolSet = {};
  for (const definition of tools) {
    const name = definition.name;
    const execute = async (input: unknown, options: { toolCallId: string }): Promise<unknown> => {
      const started = await sequencer.turn(options.toolCallId);
      const call = driver.callTool(name, input);
      started();
      return call;
    };
    set[name] = tool<unknown, unknown>({
      description: definition.description,
      // The model is shown the schema: zod 3 or 4 through the one conversion every surface uses
      // (`jsonSchemaOf`), another Standard Schema with JSON Schema support through the AI SDK;
      // validation is left to callTool (see above).
      inputSchema: jsonSchema(async () => {
        const shown = await jsonSchemaOf(definition.parameters, { io: 'input', closeObjects: true });
        return (shown as JSONSchema7 | undefined) ?? asSchema(definition.parameters as FlexibleSchema<unknown>).jsonSchema;
      }),
      execute: AsyncResource.bind(execute),
    });
  }
  return set;
}
