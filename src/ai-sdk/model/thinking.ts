import type { ResolvedThinkingOptions } from './options.js';

export type DeltaKind = 'reasoning' | 'text';

interface Segment {
  kind: DeltaKind;
  text: string;
}

/** Emits one `agent_thinking`; its promise is the event's backpressure (see `BaseAgent.think`). */
export type EmitThinking = (text: string, step: number) => Promise<void>;

/** How the model's text streams as answer deltas (`ModelSettings.textStreaming`). */
export type TextStreaming = 'off' | 'sentence' | 'delta';

/**
 * A sentence ends at `.`, `!`, `?`, `…` or their CJK forms (optionally followed by closing quotes or
 * brackets) followed by whitespace, or at a line break. The whitespace stays with the sentence so
 * that concatenating the events gives back the model's text exactly.
 */
const SENTENCE_END = /[.!?…。！？]["'”’)\]]*\s+|\n+/g;

/**
 * Buffers a model step's reasoning and text deltas and emits them as `agent_thinking` at a sane
 * granularity (never one event per token). One event never mixes reasoning and text; events keep
 * the model's order. Text of a step that has not (yet) called a tool is held back under the
 * `'tool-steps'` policy: it may be the final answer, which belongs to `agent_completed.result`.
 */
export class ThinkingCoalescer {
  private segments: Segment[] = [];
  /** Text (and what followed it) is held until the step is known to call tools. */
  private held = false;
  private toolStep = false;
  private step = 0;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void>[] = [];
  private failure: { error: unknown } | undefined;
  private closed = false;

  /**
   * @param answer With `textStreaming` on, emits text as answer deltas (`BaseAgent.streamText`):
   * every step's text goes there (never held, never thinking), `'delta'` one event per model delta,
   * `'sentence'` coalesced by the sentence rules.
   */
  constructor(
    private readonly options: ResolvedThinkingOptions,
    private readonly emit: EmitThinking,
    private readonly streaming: TextStreaming = 'off',
    private readonly answer?: EmitThinking,
  ) {}

  /** A new model step begins (0-based, as the AI SDK counts). */
  startStep(step: number): void {
    this.flushAll();
    this.step = step;
    this.toolStep = false;
    this.held = false;
  }

  push(kind: DeltaKind, delta: string): void {
    if (this.closed || delta.length === 0 || !this.accepts(kind)) return;
    if (kind === 'text' && this.streaming === 'delta') {
      this.flushAll(); // the reasoning before it, in order
      this.emitText('text', delta);
      return;
    }
    let last = this.segments.at(-1);
    if (last && last.kind !== kind && !this.held) {
      this.flushAll(); // never mix reasoning and text in one event
      last = undefined;
    }
    if (kind === 'text' && this.streaming === 'off' && this.options.text === 'tool-steps' && !this.toolStep) this.held = true;
    if (last?.kind === kind) last.text += delta;
    else this.segments.push({ kind, text: delta });
    if (this.held) return;
    if (this.buffered() >= this.options.maxChars) this.flushAll();
    else if (this.bySentence(kind)) this.flushSentences();
    this.armTimer();
  }

  /** The step calls a tool: what it said so far is progress; emit it before the tool starts. */
  toolCall(): void {
    this.toolStep = true;
    this.held = false;
    this.flushAll();
  }

  /** The step finished. Held text of a step without tool calls is the answer, not thinking. */
  endStep(): void {
    if (this.held && !this.toolStep) this.segments = this.segments.filter((segment) => segment.kind !== 'text');
    this.held = false;
    this.flushAll();
  }

  /** Emits everything still buffered that may be emitted (held text of an unfinished step is dropped). */
  finish(): void {
    if (this.held) this.segments = this.segments.filter((segment) => segment.kind !== 'text');
    this.held = false;
    this.flushAll();
    this.close();
  }

  /** Stops emitting (abort): drops the buffer and the timer. */
  close(): void {
    this.closed = true;
    this.segments = [];
    this.clearTimer();
  }

  /** Waits until every emitted event was accepted; rethrows the first emit failure. */
  async drain(): Promise<void> {
    while (this.inflight.length > 0) {
      const batch = this.inflight;
      this.inflight = [];
      await Promise.all(batch);
    }
    if (this.failure) throw this.failure.error;
  }

  private accepts(kind: DeltaKind): boolean {
    if (kind === 'reasoning') return this.options.reasoning;
    return this.streaming !== 'off' || this.options.text !== 'none';
  }

  /** Whether buffered deltas of `kind` flush at sentence ends (and after `maxDelayMs`). */
  private bySentence(kind: DeltaKind): boolean {
    return kind === 'text' && this.streaming !== 'off' ? this.streaming === 'sentence' : this.options.flush === 'sentence';
  }

  private buffered(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.text.length;
    return total;
  }

  private flushSentences(): void {
    const segment = this.segments[0];
    if (!segment || this.segments.length !== 1) return;
    let cut = 0;
    for (const match of segment.text.matchAll(SENTENCE_END)) {
      const end = match.index + match[0].length;
      if (end >= this.options.minChars) cut = end;
    }
    if (cut === 0) return;
    this.emitText(segment.kind, segment.text.slice(0, cut));
    segment.text = segment.text.slice(cut);
    if (segment.text.length === 0) this.segments = [];
    this.clearTimer();
  }

  private flushAll(): void {
    this.clearTimer();
    const segments = this.segments;
    this.segments = [];
    for (const segment of segments) this.emitText(segment.kind, segment.text);
  }

  private armTimer(): void {
    const segment = this.segments[0];
    if (this.timer || !segment || !this.bySentence(segment.kind) || this.options.maxDelayMs === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.held && !this.closed) this.flushAll();
    }, this.options.maxDelayMs);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private emitText(kind: DeltaKind, text: string): void {
    const answer = kind === 'text' && this.streaming !== 'off' ? this.answer : undefined;
    // Answer deltas are the text as written, whitespace included; thoughts of only whitespace are dropped.
    if (this.closed || (answer ? text.length === 0 : text.trim().length === 0)) return;
    const emit = answer ?? this.emit;
    for (const piece of splitAt(text, this.options.maxChars)) {
      // emit() is called synchronously so the event takes its place in the run's order now;
      // the promise only carries backpressure and failures.
      let pending: Promise<void>;
      try {
        pending = emit(piece, this.step);
      } catch (error) {
        pending = Promise.reject(error);
      }
      this.inflight.push(
        pending.catch((error: unknown) => {
          this.failure ??= { error };
        }),
      );
    }
  }
}

/** Splits `text` into pieces of at most `max` characters, preferring to cut after whitespace. */
export function splitAt(text: string, max: number): string[] {
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > max) {
    const window = rest.slice(0, max);
    const space = Math.max(window.lastIndexOf(' '), window.lastIndexOf('\n'));
    const cut = space > 0 ? space + 1 : max;
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest.length > 0) pieces.push(rest);
  return pieces;
}
