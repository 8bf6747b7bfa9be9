import { AgentwireError, ThreadResolutionError, ValidationError } from '../errors/index.js';
import { isInstance } from '../errors/guards.js';
import type { AgentEvent } from '../events/schema.js';
import type { ThreadRegistry } from '../ids/thread-registry.js';
import type { BridgeCounters } from './metrics.js';
import { messageOf } from './run-queue.js';

/**
 * Routes the first event of a run (or the first after its queue went): an `agent_started`
 * registers the run, any event must resolve (registry, then the standard run id format) to the
 * thread and user it names. Returns the error that refuses the event, or undefined.
 */
export function checkRoute(registry: ThreadRegistry, counters: BridgeCounters, event: AgentEvent): AgentwireError | undefined {
  let route;
  try {
    if (event.type === 'agent_started') {
      registry.register(event.runId, event.threadId, event.userId);
      registry.markStarted(event.runId);
    }
    route = registry.resolve(event.runId);
  } catch (error) {
    if (isInstance(error, ThreadResolutionError)) counters.threadResolutionFailures++;
    return isInstance(error, AgentwireError) ? error : new ValidationError(messageOf(error));
  }
  if (route.threadId !== event.threadId || (route.userId !== undefined && route.userId !== event.userId)) {
    return routeMismatch(counters, event, route.threadId);
  }
  return undefined;
}

/** An event that names another thread or user than its run is routed to. */
export function routeMismatch(counters: BridgeCounters, event: AgentEvent, threadId: string): ThreadResolutionError {
  counters.threadResolutionFailures++;
  return new ThreadResolutionError(
    `Event ${event.id} names thread "${event.threadId}" of user "${event.userId}", but run ${event.runId} belongs to thread "${threadId}" or to another user`,
    { details: { runId: event.runId } },
  );
}
