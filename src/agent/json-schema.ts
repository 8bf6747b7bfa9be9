import { z } from 'zod/v4';

/** A JSON Schema object (draft-07). */
export type JsonSchema = Record<string, unknown>;

export interface JsonSchemaOptions {
  /**
   * Which side of a transform or pipe the schema describes: `'input'` (what a caller sends: tool
   * arguments, an answer) or `'output'`. Default `'input'`.
   */
  io?: 'input' | 'output';
  /**
   * Every object schema without `additionalProperties` gets `false` (what model providers expect
   * of tool parameters, as the AI SDK does for zod 4). Default false.
   */
  closeObjects?: boolean;
}

type Zod3ToJsonSchema = (schema: unknown, options: Record<string, unknown>) => unknown;
let zod3Converter: Zod3ToJsonSchema | undefined;
let zod3Loading: Promise<void> | undefined;

/**
 * What `jsonSchemaSync` needs first for `schema`: a promise when it is a classic zod 3 schema and
 * `zod-to-json-schema` is not loaded yet (loaded on first use: zod 4 users never load it),
 * undefined when it can convert right away.
 */
export function jsonSchemaReady(schema: unknown): Promise<void> | undefined {
  if (zod3Converter !== undefined || zodKind(schema) !== 3) return undefined;
  return (zod3Loading ??= import('zod-to-json-schema').then((module) => {
    zod3Converter = module.zodToJsonSchema as unknown as Zod3ToJsonSchema;
  }));
}

/** `jsonSchemaOf`, for a caller that awaited `jsonSchemaReady` (a classic zod 3 schema converts to undefined before that). */
export function jsonSchemaSync(schema: unknown, options: JsonSchemaOptions = {}): JsonSchema | undefined {
  const kind = zodKind(schema);
  if (kind === undefined) return undefined;
  const io = options.io ?? 'input';
  let converted: unknown;
  try {
    if (kind === 4) converted = z.toJSONSchema(schema as z.ZodType, { target: 'draft-7', io, reused: 'inline' });
    else if (zod3Converter !== undefined) converted = zod3Converter(schema, { target: 'jsonSchema7', $refStrategy: 'none', pipeStrategy: io, effectStrategy: 'input', removeAdditionalStrategy: 'strict' });
    else return undefined;
  } catch {
    return undefined;
  }
  if (!isObject(converted)) return undefined;
  return normalizeObjects(converted, options.closeObjects === true) as JsonSchema;
}

/**
 * The JSON Schema (draft-07, references inlined) of a zod schema, the one conversion used wherever
 * a schema is shown (`ask()`'s `pending.schema`, so AG-UI's `responseSchema` and useChat's parts,
 * and tool parameters sent to a model):
 * - zod 4, and zod 3.25's `zod/v4` (a `_zod` schema): zod's own `toJSONSchema`;
 * - classic zod 3 (a `_def` with a `typeName`, what `import { z } from 'zod'` gives on zod 3.25):
 *   `zod-to-json-schema`, loaded the first time one is converted.
 * Undefined for anything else (another Standard Schema library: the caller decides), and when the
 * schema cannot be expressed in JSON Schema (a `z.date()`, `z.bigint()`, a custom refinement type…).
 */
export async function jsonSchemaOf(schema: unknown, options: JsonSchemaOptions = {}): Promise<JsonSchema | undefined> {
  await jsonSchemaReady(schema);
  return jsonSchemaSync(schema, options);
}

/** 4 for a zod 4 schema (also zod 3.25's `zod/v4`), 3 for a classic zod 3 one, undefined otherwise. */
export function zodKind(schema: unknown): 3 | 4 | undefined {
  if (typeof schema !== 'object' || schema === null) return undefined;
  if ('_zod' in schema && isObject((schema as { _zod: unknown })._zod)) return 4;
  const def = (schema as { _def?: unknown })._def;
  if (isObject(def) && typeof def.typeName === 'string' && typeof (schema as { safeParse?: unknown }).safeParse === 'function') return 3;
  return undefined;
}

/**
 * Walks every object schema (in place): `additionalProperties` `true` (what zod-to-json-schema
 * writes for a stripping object, and JSON Schema's default) is left out, so that zod 3 and zod 4
 * give the same schema; with `close`, every object without it, or with `true`, gets `false`.
 */
function normalizeObjects(schema: unknown, close: boolean): unknown {
  if (!isObject(schema)) return schema;
  const walk = (inner: unknown) => normalizeObjects(inner, close);
  const type = schema.type;
  if (type === 'object' || (Array.isArray(type) && type.includes('object'))) {
    const extra = schema.additionalProperties;
    if (isObject(extra)) schema.additionalProperties = walk(extra);
    else if (close) schema.additionalProperties = false;
    else if (extra === true) delete schema.additionalProperties;
    if (isObject(schema.properties)) {
      for (const key of Object.keys(schema.properties)) schema.properties[key] = walk(schema.properties[key]);
    }
  }
  if (Array.isArray(schema.items)) schema.items = schema.items.map(walk);
  else if (schema.items !== undefined) schema.items = walk(schema.items);
  for (const key of ['anyOf', 'allOf', 'oneOf'] as const) {
    const list = schema[key];
    if (Array.isArray(list)) schema[key] = list.map(walk);
  }
  if (isObject(schema.definitions)) {
    for (const key of Object.keys(schema.definitions)) schema.definitions[key] = walk(schema.definitions[key]);
  }
  return schema;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
