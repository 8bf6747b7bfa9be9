/**
 * `agentwire/gateway/runs`: HTTP endpoints to submit, cancel and read runs of a run queue
 * (`agentwire/runs`), on the front-end contract, as node and web-standard handlers.
 */
export { RunsHandler, type RunsHandlerOptions, type RunsHandlerStats } from './handler.js';
