import type { BaseAgent } from '../agent/base-agent.js';
import type { AgentEvent } from '../events/schema.js';

type Sink = (event: AgentEvent) => void;

/**
 * Routes an agent's locally observed events to the stream of the run they belong to. One
 * listener on the agent for all of a handler's runs (attached only while a run is active), so
 * dispatch stays O(1) per event however many AG-UI runs are in flight.
 */
export class RunRouter {
  private readonly sinks = new Map<string, Sink>();
  private attached = false;
  private readonly dispatch = (event: AgentEvent): void => {
    this.sinks.get(event.runId)?.(event);
  };

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  constructor(private readonly agent: BaseAgent<any, any>) {}

  get size(): number {
    return this.sinks.size;
  }

  has(runId: string): boolean {
    return this.sinks.has(runId);
  }

  /** Sends the run's events to `sink` from now on; returns the function that stops it. */
  add(runId: string, sink: Sink): () => void {
    this.sinks.set(runId, sink);
    if (!this.attached) {
      this.agent.on('event', this.dispatch);
      this.attached = true;
    }
    return () => {
      if (this.sinks.get(runId) !== sink) return;
      this.sinks.delete(runId);
      if (this.sinks.size === 0 && this.attached) {
        this.agent.off('event', this.dispatch);
        this.attached = false;
      }
    };
  }
}
