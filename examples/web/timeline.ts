import type { AgentEvent, EventOfType } from '../../src/client/index.js';

export interface TimelineActions {
  answer?(event: EventOfType<'tool_executing'>, approved: boolean): void;
  stop?(runId: string): void;
}

/**
 * Renders a thread's events as a timeline: one `<li>` per event (with `data-event-id`,
 * `data-seq`, `data-type`, `data-run-id`), grouped by run. Events are shown exactly once:
 * repeats are dropped by id, and a seq that does not follow the previous one of its run is
 * flagged on screen instead of being hidden.
 */
export class Timeline {
  private readonly seen = new Set<string>();
  private readonly lastSeq = new Map<string, number>();
  private readonly runs = new Map<string, HTMLOListElement>();
  private readonly toolRows = new Map<string, HTMLElement>();
  duplicatesDropped = 0;
  orderViolations = 0;

  constructor(
    private readonly root: HTMLOListElement,
    /** The page's actions: answering a pending call (Allow / Deny) and stopping a run. */
    private readonly actions: TimelineActions = {},
  ) {}

  /** Runs with an `agent_started` but no `agent_completed` yet. */
  get runsInProgress(): number {
    return this.root.querySelectorAll('.run:not([data-completed])').length;
  }

  clear(): void {
    this.root.replaceChildren();
    this.seen.clear();
    this.lastSeq.clear();
    this.runs.clear();
    this.toolRows.clear();
    this.duplicatesDropped = 0;
    this.orderViolations = 0;
    this.publishCounters();
  }

  /** Adds an event; returns false when it was a repeat (already shown). */
  add(event: AgentEvent): boolean {
    if (this.seen.has(event.id)) {
      this.duplicatesDropped++;
      this.publishCounters();
      return false;
    }
    this.seen.add(event.id);
    const expected = (this.lastSeq.get(event.runId) ?? 0) + 1;
    this.lastSeq.set(event.runId, event.seq);
    const item = this.render(event);
    item.dataset.eventId = event.id;
    item.dataset.seq = String(event.seq);
    item.dataset.type = event.type;
    item.dataset.runId = event.runId;
    item.classList.add('event', event.type);
    if (event.seq !== expected) {
      this.orderViolations++;
      item.classList.add('out-of-order');
      item.title = `expected seq ${expected}, got ${event.seq}`;
      console.error(`agentwire demo: run ${event.runId}: expected seq ${expected}, got ${event.seq}`);
    }
    this.runList(event).append(item);
    this.publishCounters();
    item.scrollIntoView({ block: 'nearest' });
    return true;
  }

  private runList(event: AgentEvent): HTMLOListElement {
    let list = this.runs.get(event.runId);
    if (!list) {
      const run = el('li', 'run');
      run.dataset.runId = event.runId;
      list = el('ol', 'run-events');
      const stop = text('button', 'stop-run', 'Stop');
      stop.type = 'button';
      stop.addEventListener('click', () => {
        stop.disabled = true;
        this.actions.stop?.(event.runId);
      });
      run.append(stop, list);
      this.root.append(run);
      this.runs.set(event.runId, list);
    }
    if (event.type === 'agent_completed') {
      list.parentElement?.setAttribute('data-completed', event.data.status);
      list.parentElement?.querySelector('.stop-run')?.remove();
    }
    return list;
  }

  private render(event: AgentEvent): HTMLLIElement {
    switch (event.type) {
      case 'agent_started':
        return this.started(event);
      case 'agent_thinking':
        return row('⋯', 'thinking', [text('span', 'thinking-text', event.data.text)]);
      case 'tool_executing':
        return this.toolExecuting(event);
      case 'tool_completed':
        return this.toolCompleted(event);
      case 'agent_completed':
        return this.completed(event);
      case 'user_answered':
        return this.answered(event);
    }
  }

  private answered(event: EventOfType<'user_answered'>): HTMLLIElement {
    const { data } = event;
    const call = this.toolRows.get(data.toolCallId);
    if (call) delete call.dataset.pending; // the Allow/Deny buttons go with the pending state
    call?.querySelector('.approval')?.remove();
    const shown = data.kind === 'approval' ? (data.approved ? 'allowed' : 'denied') : `answered ${preview(data.value)}`;
    const item = row('☞', 'user-answer', [text('span', 'answer-text', shown)]);
    item.dataset.toolCallId = data.toolCallId;
    item.dataset.answer = data.kind === 'approval' ? (data.approved ? 'allowed' : 'denied') : 'answered';
    return item;
  }

  private started(event: EventOfType<'agent_started'>): HTMLLIElement {
    const input = event.data.input as { question?: unknown } | undefined;
    const question = typeof input?.question === 'string' ? input.question : JSON.stringify(input ?? null);
    return row('▶', 'question', [text('span', 'question-text', question), text('span', 'meta', `${event.agent} · ${time(event.ts)}`)]);
  }

  private toolExecuting(event: EventOfType<'tool_executing'>): HTMLLIElement {
    const item = row('⚙', 'tool-call', [
      text('span', 'tool-name', event.data.tool),
      text('code', 'tool-args', preview(event.data.args)),
      text('span', 'tool-status', '…'),
      text('span', 'tool-duration', 'running'),
    ]);
    item.dataset.toolCallId = event.data.toolCallId;
    item.dataset.toolStatus = 'running';
    this.toolRows.set(event.data.toolCallId, item);
    if (event.data.pending?.kind === 'approval') {
      // Waiting for this user: Allow / Deny until the answer (or the call's end) arrives.
      item.dataset.pending = 'approval';
      setText(item, '.tool-duration', 'waiting for you');
      const buttons = el('span', 'approval');
      for (const [label, approved] of [['Allow', true], ['Deny', false]] as const) {
        const button = text('button', `answer-${label.toLowerCase()}`, label);
        button.type = 'button';
        button.addEventListener('click', () => {
          buttons.querySelectorAll('button').forEach((b) => (b.disabled = true));
          this.actions.answer?.(event, approved);
        });
        buttons.append(button);
      }
      item.append(buttons);
    }
    return item;
  }

  private toolCompleted(event: EventOfType<'tool_completed'>): HTMLLIElement {
    const { data } = event;
    const ok = data.status === 'succeeded';
    const mark = ok ? '✓' : '✗';
    const duration = `${data.durationMs.toFixed(0)} ms`;
    // Close the call's row: status and duration next to its args.
    const call = this.toolRows.get(data.toolCallId);
    if (call) {
      delete call.dataset.pending;
      call.querySelector('.approval')?.remove();
      call.dataset.toolStatus = data.status;
      setText(call, '.tool-status', mark);
      setText(call, '.tool-duration', duration);
      this.toolRows.delete(data.toolCallId);
    }
    const detail = ok ? `→ ${preview(data.result)}` : `${data.error.name}: ${data.error.message}`;
    const item = row(mark, 'tool-result', [text('span', 'tool-name', data.tool), text('span', 'tool-duration', duration), text('span', 'tool-detail', detail)]);
    item.dataset.toolCallId = data.toolCallId;
    item.dataset.toolStatus = data.status;
    return item;
  }

  private completed(event: EventOfType<'agent_completed'>): HTMLLIElement {
    const { data } = event;
    const duration = `${(data.durationMs / 1000).toFixed(2)} s`;
    if (data.status === 'succeeded') {
      const answer = typeof data.result === 'string' ? data.result : JSON.stringify(data.result);
      return row('★', 'answer', [text('p', 'answer-text', answer), text('span', 'meta', `answered in ${duration}`)]);
    }
    return row(data.status === 'cancelled' ? '■' : '✗', 'answer failed', [
      text('p', 'answer-text', `${data.status}: ${data.error.message}`),
      text('span', 'meta', duration),
    ]);
  }

  private publishCounters(): void {
    this.root.dataset.events = String(this.seen.size);
    this.root.dataset.duplicatesDropped = String(this.duplicatesDropped);
    this.root.dataset.orderViolations = String(this.orderViolations);
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

function text<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, content: string): HTMLElementTagNameMap[K] {
  const node = el(tag, className);
  node.textContent = content;
  return node;
}

function row(icon: string, className: string, children: HTMLElement[]): HTMLLIElement {
  const item = el('li', className);
  item.append(text('span', 'icon', icon), ...children);
  return item;
}

function setText(root: HTMLElement, selector: string, content: string): void {
  const node = root.querySelector(selector);
  if (node) node.textContent = content;
}

function preview(value: unknown, max = 140): string {
  const shown = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return shown.length > max ? `${shown.slice(0, max - 1)}…` : shown;
}

function time(ts: number): string {
  return new Date(ts).toLocaleTimeString();
}
