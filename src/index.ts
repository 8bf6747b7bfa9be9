/** agentwire: run agents, stream their five lifecycle events to the people watching. */
export * from './errors/index.js';
export * from './events/index.js';
export * from './ids/index.js';
export * from './agent/index.js';
export * from './bridge/index.js';
export * from './transport/index.js';
export * from './protocol/index.js';
