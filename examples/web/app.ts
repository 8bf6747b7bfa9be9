/**
 * The demo's chat page: ask a question, watch the run's five lifecycle events arrive live.
 * The thread id, the events shown and the last cursor are kept in sessionStorage, so a reload
 * (or a dropped connection) resumes after the cursor and shows every event exactly once.
 * Query parameters: `user` (default alice; the demo token is `demo-<user>`), `transport`
 * (`websocket`, the default, or `sse`).
 */
import type { ClientStatus } from '../../src/client/index.js';
import { openSseFeed, openWebSocketFeed, type Feed, type FeedHandlers } from './feeds.js';
import { ThreadStore } from './store.js';
import { Timeline } from './timeline.js';

const params = new URLSearchParams(location.search);
const userId = /^[A-Za-z0-9_-]{1,32}$/.test(params.get('user') ?? '') ? (params.get('user') as string) : 'alice';
const transport = params.get('transport') === 'sse' ? 'sse' : 'websocket';
/** DEMO-ONLY token: the demo server accepts `demo-<user>` as that user. */
const token = `demo-${userId}`;

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
}

const form = byId<HTMLFormElement>('ask-form');
const input = byId<HTMLInputElement>('question');
const askButton = byId<HTMLButtonElement>('ask');
const statusBadge = byId<HTMLSpanElement>('status');
const notices = byId<HTMLDivElement>('notices');
const busy = byId<HTMLSpanElement>('busy');
const threadLabel = byId<HTMLElement>('thread-id');
const timeline = new Timeline(byId<HTMLOListElement>('timeline'), {
  answer: (event, approved) => {
    const pending = event.data.pending;
    if (!pending) return;
    void post('/api/answer', { threadId: event.threadId, runId: event.runId, requestId: pending.requestId, approved });
  },
  stop: (runId) => void post('/api/runs/cancel', { runId }),
});

/** POSTs a JSON body as this user; refusals become notices. */
async function post(path: string, body: unknown): Promise<void> {
  try {
    const response = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      const refusal = (await response.json().catch(() => ({}))) as { error?: { code: string; message: string } };
      notice(`${refusal.error?.code ?? response.status}: ${refusal.error?.message ?? 'refused'}`, 'error');
    }
  } catch (error) {
    notice(`${path} failed: ${(error as Error).message}`, 'error');
  }
}
const store = new ThreadStore(userId);

const STATUS_LABELS: Record<ClientStatus, string> = {
  connecting: 'connecting…',
  open: 'live',
  reconnecting: 'reconnecting…',
  closed: 'disconnected',
};

function setStatus(status: ClientStatus): void {
  statusBadge.dataset.status = status;
  statusBadge.textContent = `${transport === 'sse' ? 'SSE' : 'WebSocket'}: ${STATUS_LABELS[status]}`;
}

function notice(message: string, kind: 'info' | 'error' = 'info'): void {
  const item = document.createElement('p');
  item.className = `notice ${kind}`;
  item.textContent = message;
  notices.append(item);
  while (notices.childElementCount > 3) notices.firstElementChild?.remove();
}

function updateBusy(): void {
  const running = timeline.runsInProgress;
  busy.hidden = running === 0;
  busy.textContent = running === 1 ? 'the agent is working…' : `${running} runs in progress…`;
}

function renderHeader(): void {
  byId('user').textContent = userId;
  threadLabel.textContent = store.thread.threadId;
  document.querySelectorAll<HTMLAnchorElement>('a[data-user]').forEach((link) => {
    link.href = `?user=${link.dataset.user ?? ''}${transport === 'sse' ? '&transport=sse' : ''}`;
    link.toggleAttribute('aria-current', link.dataset.user === userId);
  });
  document.querySelectorAll<HTMLAnchorElement>('a[data-transport]').forEach((link) => {
    link.href = `?user=${userId}&transport=${link.dataset.transport ?? ''}`;
    link.toggleAttribute('aria-current', link.dataset.transport === transport);
  });
}

/** Handlers of one feed; a feed replaced by a newer one can no longer touch the page. */
function handlersFor(isCurrent: () => boolean): FeedHandlers {
  return {
    event(event, cursor) {
      if (!isCurrent()) return;
      if (timeline.add(event)) store.add(event, cursor);
      updateBusy();
    },
    status(status) {
      if (isCurrent()) setStatus(status);
    },
    gap(reason, message) {
      if (isCurrent()) notice(`History gap (${reason}): ${message.replace(/\.?$/, '.')} Showing what the server still has.`);
    },
    error(message) {
      if (isCurrent()) notice(message, 'error');
    },
  };
}

let generation = 0;
function openFeed(): Feed {
  const mine = ++generation;
  const open = transport === 'sse' ? openSseFeed : openWebSocketFeed;
  return open({ threadId: store.thread.threadId, token, after: store.thread.cursor }, handlersFor(() => mine === generation));
}

function replaceFeed(): void {
  generation++; // silence the old feed before it reports its own closing
  feed.close();
  feed = openFeed();
}

// What this tab showed before a reload, then everything after its cursor from the server.
for (const event of store.thread.events) timeline.add(event);
renderHeader();
updateBusy();
let feed = openFeed();

form.addEventListener('submit', (submit) => {
  submit.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  askButton.disabled = true;
  void ask(question).finally(() => {
    askButton.disabled = false;
    input.focus();
  });
});

async function ask(question: string): Promise<void> {
  try {
    const response = await fetch('/api/runs', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ question, threadId: store.thread.threadId }),
    });
    const body = (await response.json()) as { runId?: string; error?: { code: string; message: string } };
    if (!response.ok) {
      notice(`${body.error?.code ?? response.status}: ${body.error?.message ?? 'the run was refused'}`, 'error');
      return;
    }
    input.value = '';
  } catch (error) {
    notice(`Could not start the run: ${(error as Error).message}`, 'error');
  }
}

byId<HTMLButtonElement>('new-thread').addEventListener('click', () => {
  timeline.clear();
  store.reset(userId);
  renderHeader();
  updateBusy();
  replaceFeed();
});

// When the browser loses the network, drop the connection rather than wait for it to time out,
// and resume after the last cursor as soon as the network is back.
let offline = false;
addEventListener('offline', () => {
  offline = true;
  generation++;
  feed.close();
  setStatus('reconnecting');
  statusBadge.textContent = 'offline: will resume';
});
addEventListener('online', () => {
  if (!offline) return;
  offline = false;
  replaceFeed();
});

addEventListener('pagehide', () => store.save());
