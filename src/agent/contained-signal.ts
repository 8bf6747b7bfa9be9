/**
 * Abort signals whose listeners cannot crash the process.
 *
 * Node dispatches an `EventTarget` event inside `abort()`, but a listener that throws (or returns
 * a promise that rejects) does not throw out of `abort()`: Node rethrows it on
 * `process.nextTick`, as an uncaught exception, which ends the process. A `try` around `abort()`
 * cannot catch it. So the signals agentwire hands to agent code (`ctx.signal`, a tool call's
 * signal) contain their `abort` listeners instead: each one added with `addEventListener` is
 * registered through a wrapper that calls it and hands what it throws, or what its promise
 * rejects with, to the signal's `report`. Node's `onabort` setter registers through the signal's
 * `addEventListener`, so a handler set there is contained too. The signal stays a real
 * `AbortSignal` (fetch(), `AbortSignal.any`, `events.addAbortListener` take it); its listeners run
 * in the same order, once each; `removeEventListener`, `{ once }` and dedupe work as usual.
 *
 * Listeners on other signals (one derived with `AbortSignal.any`, the caller's own) are not
 * covered, nor listeners added through `EventTarget.prototype.addEventListener.call(signal, …)`.
 */

type Report = (error: unknown) => void;
type Wrapper = (this: unknown, event: Event) => void;

const nativeAdd = AbortSignal.prototype.addEventListener;
const nativeRemove = AbortSignal.prototype.removeEventListener;

/** Calls `listener` as `EventTarget` would; what it throws or rejects with goes to `report`. */
function invoke(report: Report, listener: object, target: unknown, event: Event): void {
  try {
    const result: unknown =
      typeof listener === 'function' ? (listener as (this: unknown, event: Event) => unknown).call(target, event) : (listener as EventListenerObject).handleEvent(event);
    if (result !== null && (typeof result === 'object' || typeof result === 'function')) {
      const then = (result as { then?: unknown }).then;
      if (typeof then === 'function') (then as (ok: undefined, failed: Report) => unknown).call(result, undefined, (error: unknown) => safeReport(report, error));
    }
  } catch (error) {
    safeReport(report, error);
  }
}

/** A report that throws must not escape into the dispatch either. */
function safeReport(report: Report, error: unknown): void {
  try {
    report(error);
  } catch {
    // The reporting path failed too: the listener's error is dropped rather than crash the process.
  }
}

function isListener(listener: unknown): listener is object {
  return typeof listener === 'function' || (typeof listener === 'object' && listener !== null);
}

/** Whether `addEventListener`'s `options` ask for the capture phase (a boolean is `capture`). */
function captureOf(options: unknown): boolean {
  return typeof options === 'boolean' ? options : typeof options === 'object' && options !== null && Boolean((options as EventListenerOptions).capture);
}

/** The same for `removeEventListener`, read as Node reads it (`options?.capture === true`: a boolean means the bubbling phase). */
function removalCaptureOf(options: unknown): boolean {
  return typeof options === 'object' && options !== null && (options as EventListenerOptions).capture === true;
}

interface Guard {
  readonly report: Report;
  /**
   * Listener → the wrapper registered in its place, one per listener and phase (EventTarget's
   * identity rules: a listener added twice is one, and removing it removes that one). Entries go on
   * removal; those of listeners that fired once go with the signal.
   */
  bubbling?: Map<object, Wrapper>;
  capturing?: Map<object, Wrapper>;
}

/** Contained signal → its guard. */
const guards = new WeakMap<AbortSignal, Guard>();

function addContained(this: AbortSignal, type: string, listener: unknown, options?: boolean | AddEventListenerOptions): void {
  const guard = type === 'abort' && isListener(listener) ? guards.get(this) : undefined;
  if (guard === undefined) return nativeAdd.call(this, type, listener as EventListenerOrEventListenerObject, options);
  const wrappers = captureOf(options) ? (guard.capturing ??= new Map()) : (guard.bubbling ??= new Map());
  const original = listener as object;
  let wrapper = wrappers.get(original);
  if (wrapper === undefined) {
    const report = guard.report;
    wrapper = function (this: unknown, event: Event) {
      invoke(report, original, this, event);
    };
    wrappers.set(original, wrapper);
  }
  nativeAdd.call(this, type, wrapper, options);
}

function removeContained(this: AbortSignal, type: string, listener: unknown, options?: boolean | EventListenerOptions): void {
  const guard = type === 'abort' && isListener(listener) ? guards.get(this) : undefined;
  const wrappers = guard && (removalCaptureOf(options) ? guard.capturing : guard.bubbling);
  const wrapper = wrappers?.get(listener as object);
  if (wrapper === undefined) return nativeRemove.call(this, type, listener as EventListenerOrEventListenerObject, options);
  wrappers!.delete(listener as object);
  nativeRemove.call(this, type, wrapper, options);
}

/**
 * The prototype of contained signals: `AbortSignal.prototype` with the two methods guarded. One
 * prototype swap per signal: cheaper than adding own properties to a Node signal (each has a map of
 * its own, so every property added to one is a slow store).
 */
const CONTAINED_PROTOTYPE: object = Object.create(AbortSignal.prototype, {
  addEventListener: { value: addContained, writable: true, configurable: true },
  removeEventListener: { value: removeContained, writable: true, configurable: true },
});

/**
 * Makes the `abort` listeners of `signal` unable to crash the process: from now on a listener
 * added to it that throws or rejects is handed to `report` instead of becoming an uncaught
 * exception. Returns `signal` (the same object, still an `AbortSignal`). Call it on a fresh signal,
 * before it reaches anyone's code (listeners added earlier are not covered); a second call is a no-op.
 */
export function containListeners(signal: AbortSignal, report: Report): AbortSignal {
  if (Object.getPrototypeOf(signal) === CONTAINED_PROTOTYPE) return signal;
  guards.set(signal, { report });
  Object.setPrototypeOf(signal, CONTAINED_PROTOTYPE);
  return signal;
}

/**
 * Adds / removes an `abort` listener of agentwire's own (one that cannot throw) without the wrapper
 * a contained signal puts around listeners: the hot path's races and tool calls skip that cost.
 */
export function listenRaw(signal: AbortSignal, listener: () => void): void {
  nativeAdd.call(signal, 'abort', listener, { once: true });
}

export function unlistenRaw(signal: AbortSignal, listener: () => void): void {
  nativeRemove.call(signal, 'abort', listener);
}

/** An `AbortController` whose signal contains its listeners (`containListeners`). */
export function containedController(report: Report): AbortController {
  const controller = new AbortController();
  containListeners(controller.signal, report);
  return controller;
}
