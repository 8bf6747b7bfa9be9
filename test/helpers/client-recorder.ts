import type { AgentEvent, AgentwireClient, AgentwireError, ClientStatus } from '../../src/client/index.js';

/** Records everything a client hands to the application: events, errors and status changes, in order. */
export function recordClient(client: AgentwireClient): { client: AgentwireClient; events: AgentEvent[]; errors: AgentwireError[]; statuses: ClientStatus[] } {
  const events: AgentEvent[] = [];
  const errors: AgentwireError[] = [];
  const statuses: ClientStatus[] = [];
  client.on('event', (event) => events.push(event));
  client.on('error', (error) => errors.push(error));
  client.on('status', (status) => statuses.push(status));
  return { client, events, errors, statuses };
}
