import { TransportError, type AgentEvent, type Transport, type TransportHealth } from '../../src/index.js';

/**
 * Wraps a real transport and injects failures into `send`: a number of upcoming failures, or an
 * outage until `up()`. What the inner transport received is what a subscriber can observe.
 */
export class FaultyTransport implements Transport {
  private failuresLeft = 0;
  private isDown = false;
  attempts = 0;
  failures = 0;

  constructor(readonly inner: Transport) {}

  failNext(count: number): void {
    this.failuresLeft = count;
  }

  down(): void {
    this.isDown = true;
  }

  up(): void {
    this.isDown = false;
  }

  async send(event: AgentEvent): Promise<void> {
    this.attempts++;
    if (this.isDown || this.failuresLeft > 0) {
      if (this.failuresLeft > 0) this.failuresLeft--;
      this.failures++;
      throw new TransportError('injected transport failure', { code: 'TRANSPORT_FAILED', details: { injected: true } });
    }
    await this.inner.send(event);
  }

  async health(): Promise<TransportHealth> {
    return this.isDown ? { ok: false, detail: 'down (injected)' } : { ok: true };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
