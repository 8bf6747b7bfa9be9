import type { Server } from 'node:http';
import type { AgentEvent } from '../../events/schema.js';
import { WebSocketGateway as ContractGateway, type GatewayAddress } from '../../gateway/websocket/gateway.js';
import type { WebSocketGatewayOptions } from '../../gateway/websocket/options.js';
import type { WebSocketGatewayStats } from '../../gateway/websocket/stats.js';
import type { EventLog, Transport, TransportHealth } from '../types.js';
import { legacyStats, type GatewayStats } from './stats.js';

/**
 * @deprecated Import `WebSocketGateway` from `agentwire/gateway/websocket`. This one is the
 * same gateway (it delegates to it) and keeps the old `stats()` shape.
 */
export class WebSocketGateway implements Transport {
  /** The gateway of `agentwire/gateway/websocket` this one delegates to. */
  readonly gateway: ContractGateway;
  readonly sendSync?: (event: AgentEvent) => void;

  constructor(options: WebSocketGatewayOptions) {
    this.gateway = new ContractGateway(options);
    if (this.gateway.sendSync) this.sendSync = this.gateway.sendSync;
  }

  get transport(): Transport & EventLog {
    return this.gateway.log;
  }

  get log(): Transport & EventLog {
    return this.gateway.log;
  }

  attach(server: Server): this {
    this.gateway.attach(server);
    return this;
  }

  listen(port?: number, host?: string): Promise<GatewayAddress> {
    return this.gateway.listen(port, host);
  }

  send(event: AgentEvent): Promise<void> {
    return this.gateway.send(event);
  }

  revoke(userId: string, reason?: string): number {
    return this.gateway.revoke(userId, reason);
  }

  health(): Promise<TransportHealth> {
    return this.gateway.health();
  }

  /** The old stats shape (see `GatewayStats` here); `gateway.stats()` has the contract's. */
  stats(): GatewayStats {
    return legacyStats(this.gateway.stats());
  }

  /** The contract's stats (the `GatewayMetricsSource` of `agentwire/metrics`). */
  metrics(): WebSocketGatewayStats {
    return this.gateway.stats();
  }

  close(): Promise<void> {
    return this.gateway.close();
  }
}
