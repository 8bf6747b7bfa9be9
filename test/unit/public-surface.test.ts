/**
 * The public surface is drawn on purpose: the root entry exports the agent author's and the
 * integrator's API by name, and internals (the per-run emitter, histograms, the bridge adapter,
 * cursor codecs, bench helpers) stay out of every entry point. A new root export fails here until
 * it is added to the list below, deliberately.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const ROOT = [
  'ASK_TOOL_NAME', 'DEFAULT_APPROVAL_TIMEOUT_MS',
  'AbortError', 'AgentBridge', 'AgentwireError', 'AuthError', 'BaseAgent', 'DEFAULT_JSON_LIMITS', 'DeliveryError',
  'ERROR_CATALOG', 'EVENT_TYPES', 'GatewayError', 'HistoryGapError', 'LifecycleChecker', 'MAX_RUN_ID_LENGTH',
  'MAX_THREAD_ID_LENGTH', 'MemoryTransport', 'StateError', 'ThreadRegistry', 'ThreadResolutionError', 'ToolError',
  'ToolTimeoutError', 'TransportError', 'ValidationError', 'WIRE_VERSION', 'assertThreadId', 'assertUserId', 'defaultErrorInfo',
  'defineTool', 'errorFromCode', 'generateRunId', 'httpStatusOf', 'isErrorCode', 'isNotSerializableMarker', 'isRunId',
  'isValidThreadId', 'isValidUserId', 'parseEvent', 'parseRunId', 'safeParseEvent', 'serializeError', 'tokenFrom', 'validateLifecycle',
];
const INTERNALS = ['RunEmitter', 'Histogram', 'LATENCY_BUCKETS_MS', 'BridgeAdapter', 'formatCursor', 'parseCursor', 'compareIds', 'measureAppendThroughput', 'deleteKeysWithPrefix', 'eventJson'];

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, string | { default: string }>;
};
const entries = Object.entries(pkg.exports)
  .filter((pair): pair is [string, { default: string }] => typeof pair[1] === 'object')
  .map(([subpath, target]) => [subpath, target.default.replace(/^\.\/dist\//, '../../').replace(/\.js$/, '.ts')] as const);

describe('public surface', () => {
  it('the root entry exports exactly the listed runtime names', async () => {
    const root = await import('../../src/index.js');
    expect(Object.keys(root).sort()).toEqual([...ROOT].sort());
  });

  it('no entry point exports an internal', async () => {
    expect(entries.length).toBeGreaterThan(10);
    for (const [subpath, file] of entries) {
      const mod = (await import(new URL(file, import.meta.url).href)) as Record<string, unknown>;
      expect(Object.keys(mod).filter((name) => INTERNALS.includes(name)), subpath).toEqual([]);
    }
  });

  it('agentwire/protocol has the wire schemas, the frames and the constants; its constants module imports nothing', async () => {
    const protocol = await import('../../src/protocol/index.js');
    const constants = await import('../../src/protocol/constants.js');
    for (const name of ['agentEventSchema', 'clientFrameSchema', 'subscribeFrameSchema', 'threadIdSchema', 'CloseCode', 'PROTOCOL_VERSION', 'WIRE_VERSION', 'EVENT_TYPES']) {
      expect(protocol, name).toHaveProperty(name);
    }
    // The five lifecycle events, then the answer event of interactive runs (docs/interactive.md).
    expect([...protocol.EVENT_TYPES, 'user_answered']).toEqual(protocol.agentEventSchema.options.map((option) => option.shape.type.value));
    expect(Object.keys(constants).every((name) => name in protocol)).toBe(true);
    expect(readFileSync(new URL('../../src/protocol/constants.ts', import.meta.url), 'utf8')).not.toMatch(/^\s*import\s/m);
  });
});
