/**
 * The Standard Schema interface (https://standardschema.dev, v1), copied as its authors ask rather
 * than depended on: what a tool's `parameters` must implement. zod ≥ 3.24 (classic zod 3 included),
 * zod 4, valibot and arktype schemas all do, so tools take the app's own schema library and version.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The standard properties. */
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace StandardSchemaV1 {
  /** The standard properties of a schema. */
  export interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    /** The schema library (`zod`, `valibot`, `arktype`, …). */
    readonly vendor: string;
    /** Validates an unknown value; a library may answer asynchronously. */
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>;
    /** Inferred types (type level only). */
    readonly types?: Types<Input, Output> | undefined;
  }
  export type Result<Output> = SuccessResult<Output> | FailureResult;
  export interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  export interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  export interface Issue {
    readonly message: string;
    /** Where in the value the issue is. */
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  export interface PathSegment {
    readonly key: PropertyKey;
  }
  export interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  /** The input type of a schema. */
  export type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input'];
  /** The output type of a schema: what a tool's `execute` receives. */
  export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output'];
}

export type StandardOutcome<Schema extends StandardSchemaV1> =
  | { ok: true; value: StandardSchemaV1.InferOutput<Schema> }
  | { ok: false; field: string; message: string; issues: readonly StandardSchemaV1.Issue[] };

/**
 * Validates `value` against `schema`: the value it produced, or the first issue as a dotted field
 * path under `prefix`. Synchronous when the library answers synchronously (zod, valibot, arktype
 * for schemas without async refinements), a promise otherwise.
 */
export function validateStandard<Schema extends StandardSchemaV1>(schema: Schema, value: unknown, prefix: string): StandardOutcome<Schema> | Promise<StandardOutcome<Schema>> {
  const result = schema['~standard'].validate(value);
  return result instanceof Promise ? result.then((settled) => outcomeOf<Schema>(settled, prefix)) : outcomeOf<Schema>(result, prefix);
}

function outcomeOf<Schema extends StandardSchemaV1>(result: StandardSchemaV1.Result<unknown>, prefix: string): StandardOutcome<Schema> {
  if (!result.issues) return { ok: true, value: result.value as StandardSchemaV1.InferOutput<Schema> };
  const issue = result.issues[0];
  const path = (issue?.path ?? []).map((segment) => String(typeof segment === 'object' && segment !== null ? segment.key : segment));
  return { ok: false, field: [prefix, ...path].filter(Boolean).join('.') || '(root)', message: issue?.message ?? 'invalid value', issues: result.issues };
}
