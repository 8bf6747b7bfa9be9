/**
 * `agentwire/protocol`: the wire, for code on either side of it. The zod schemas of events
 * (wire format version 1) and of the frames clients send, the types of the frames servers send,
 * and the protocol constants (close codes, protocol version, frame types, error frame codes).
 *
 * The constants have no dependency at all: code that must not pull in zod (a browser bundle)
 * imports them from `agentwire/protocol/constants`.
 *
 * @module agentwire/protocol
 */
export * from './constants.js';
export * from './frames.js';
// Wire schemas of the events (zod) and the types inferred from them. The explicit export wins over
// the schema module's copies of the same two constants (equal, checked in frames.ts).
export * from '../events/schema.js';
export { EVENT_TYPES, WIRE_VERSION } from './constants.js';
export { threadIdSchema, runIdSchema, MAX_THREAD_ID_LENGTH, MAX_RUN_ID_LENGTH } from '../ids/thread-id.js';
