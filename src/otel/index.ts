/**
 * `agentwire/otel`: OpenTelemetry tracing of runs and tool calls (GenAI agent conventions).
 *
 * @module agentwire/otel
 */
export { otelInstrumentation, type OtelInstrumentationOptions } from './instrumentation.js';
export { AGENTWIRE, ERROR_TYPE, GEN_AI, OPERATION, USER_ID, errorType } from './attributes.js';
