/**
 * `containListeners`: the listeners of a contained signal cannot crash the process. What one throws
 * or rejects with goes to `report`; every listener still runs, in order, once; removal, `once`,
 * dedupe and `onabort` behave as on any `AbortSignal`; and the signal is still one for the
 * platform (instanceof, `AbortSignal.any`, `events.addAbortListener`, a real fetch() over loopback).
 * Vitest fails the run on any uncaught exception, so a listener's throw escaping would fail it too.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { addAbortListener } from 'node:events';
import { describe, expect, it } from 'vitest';
import { containListeners, containedController } from '../../src/agent/contained-signal.js';

function contained() {
  const reported: unknown[] = [];
  const controller = containedController((error) => reported.push(error));
  return { controller, signal: controller.signal, reported };
}

describe('containListeners', () => {
  it('a throwing listener is reported; the others still run in order and abort() returns', () => {
    const { controller, signal, reported } = contained();
    const order: string[] = [];
    const boom = new Error('boom');
    signal.addEventListener('abort', () => order.push('first'));
    signal.addEventListener('abort', () => {
      order.push('thrower');
      throw boom;
    });
    signal.addEventListener('abort', function (this: unknown, event) {
      order.push(this === signal && event.type === 'abort' && event.target === signal ? 'third' : 'wrong this');
    });
    expect(() => controller.abort('why')).not.toThrow();
    expect(order).toEqual(['first', 'thrower', 'third']);
    expect(reported).toEqual([boom]);
    expect([signal.aborted, signal.reason]).toEqual([true, 'why']);
  });

  it('a listener whose promise rejects is reported once it rejects', async () => {
    const { controller, signal, reported } = contained();
    const late = new Error('late');
    signal.addEventListener('abort', async () => {
      await Promise.resolve();
      throw late;
    });
    controller.abort();
    await new Promise((resolve) => setImmediate(resolve));
    expect(reported).toEqual([late]);
  });

  it('handleEvent objects, onabort (set, replaced in place, cleared) and a throwing report are contained', () => {
    const order: string[] = [];
    const controller = containedController(() => {
      order.push('report');
      throw new Error('the report throws too');
    });
    const { signal } = controller;
    signal.addEventListener('abort', {
      handleEvent(event: Event) {
        order.push(`handleEvent ${event.type}`);
        throw new Error('x');
      },
    });
    const first = () => order.push('first handler');
    signal.onabort = first;
    expect(signal.onabort).toBe(first);
    signal.addEventListener('abort', () => order.push('after'));
    const second = function (this: AbortSignal) {
      order.push(this === signal ? 'second handler' : 'wrong this');
      throw new Error('y');
    };
    signal.onabort = second; // keeps the place the first one had
    expect(() => controller.abort()).not.toThrow();
    expect(order).toEqual(['handleEvent abort', 'report', 'second handler', 'report', 'after']);

    const other = containedController(() => undefined);
    const calls: string[] = [];
    other.signal.onabort = () => calls.push('cleared handler ran');
    other.signal.onabort = null;
    expect(other.signal.onabort).toBeNull();
    other.abort();
    expect(calls).toEqual([]);
  });

  it('removeEventListener, once, dedupe and phases behave exactly as on a plain signal', () => {
    /** One script of registrations, removals and dispatches; what ran, in order. */
    const script = (controller: AbortController): string[] => {
      const { signal } = controller;
      const calls: string[] = [];
      const removed = () => calls.push('removed');
      const twice = () => calls.push('added twice');
      const phases = () => calls.push('phases');
      const boolPhase = () => calls.push('boolean phase');
      const object = { handleEvent: () => calls.push('object') };
      signal.addEventListener('abort', removed);
      signal.removeEventListener('abort', removed);
      signal.addEventListener('abort', twice);
      signal.addEventListener('abort', twice);
      signal.addEventListener('abort', phases, { capture: true });
      signal.addEventListener('abort', phases);
      signal.removeEventListener('abort', phases, { capture: true });
      signal.addEventListener('abort', boolPhase, true);
      signal.addEventListener('abort', boolPhase);
      signal.removeEventListener('abort', boolPhase, true);
      signal.addEventListener('abort', object);
      signal.addEventListener('abort', () => calls.push('once'), { once: true });
      signal.addEventListener('other', () => calls.push('other type'));
      controller.abort();
      signal.dispatchEvent(new Event('abort'));
      signal.removeEventListener('abort', object);
      signal.dispatchEvent(new Event('abort'));
      signal.dispatchEvent(new Event('other'));
      return calls;
    };
    const native = script(new AbortController());
    expect(native.length).toBeGreaterThan(8);
    expect(script(containedController(() => undefined))).toEqual(native);
  });

  it('is still an AbortSignal: instanceof, AbortSignal.any, events.addAbortListener, containListeners twice', () => {
    const { controller, signal } = contained();
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(Object.prototype.toString.call(signal)).toBe('[object AbortSignal]');
    expect(containListeners(signal, () => undefined)).toBe(signal);
    const derived = AbortSignal.any([signal]);
    const calls: string[] = [];
    const disposable = addAbortListener(signal, () => calls.push('addAbortListener'));
    controller.abort(new Error('stop'));
    expect(derived.aborted).toBe(true);
    expect((derived.reason as Error).message).toBe('stop');
    expect(calls).toEqual(['addAbortListener']);
    disposable[Symbol.dispose]();
  });

  it('a real fetch() over loopback is aborted by it', async () => {
    let arrived!: () => void;
    const requested = new Promise<void>((resolve) => (arrived = resolve));
    const server = createServer(() => arrived()); // never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { controller, signal } = contained();
      const reply = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal });
      await requested;
      controller.abort(new Error('cancelled by the run'));
      await expect(reply).rejects.toThrow('cancelled by the run');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
