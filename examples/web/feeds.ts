import { connect, type AgentEvent, type ClientStatus } from '../../src/client/index.js';

/** What the page needs from a live source of a thread's events, whichever gateway serves it. */
export interface Feed {
  close(): void;
}

export interface FeedHandlers {
  /** A new event and the cursor just after it. */
  event(event: AgentEvent, cursor: string): void;
  status(status: ClientStatus): void;
  /** The server could not resume after our cursor (`reason`: trimmed, epoch_changed, …). */
  gap(reason: string, message: string): void;
  error(message: string): void;
}

export interface FeedOptions {
  threadId: string;
  token: string;
  /** Resume after this cursor; undefined replays the whole thread. */
  after: string | undefined;
}

/** The WebSocket gateway through the agentwire client: reconnects, resumes, drops repeats. */
export function openWebSocketFeed(options: FeedOptions, handlers: FeedHandlers): Feed {
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const client = connect(url.toString(), {
    threadId: options.threadId,
    token: options.token,
    ...(options.after === undefined ? {} : { after: options.after }),
  });
  client.on('event', (event, cursor) => handlers.event(event, cursor));
  client.on('status', (status) => handlers.status(status));
  client.on('history_gap', (gap) => handlers.gap(gap.reason, gap.message));
  client.on('error', (error) => {
    if (error.code !== 'HISTORY_GAP') handlers.error(`${error.code}: ${error.message}`);
  });
  handlers.status(client.status);
  return { close: () => client.close() };
}

const EVENT_TYPES = ['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'agent_completed', 'user_answered'] as const;

/**
 * The SSE gateway through the browser's EventSource, which reconnects by itself and sends
 * `Last-Event-ID`; the page drops repeats by id like the client does.
 */
export function openSseFeed(options: FeedOptions, handlers: FeedHandlers): Feed {
  let source: EventSource | undefined;
  const open = (after: string | undefined): void => {
    const url = new URL('/events', location.href);
    url.searchParams.set('threadId', options.threadId);
    url.searchParams.set('token', options.token);
    if (after !== undefined) url.searchParams.set('after', after);
    const current = new EventSource(url);
    source = current;
    handlers.status('connecting');
    const onEvent = (message: MessageEvent<string>) => handlers.event(JSON.parse(message.data) as AgentEvent, message.lastEventId);
    for (const type of EVENT_TYPES) current.addEventListener(type, onEvent);
    current.addEventListener('subscribed', () => handlers.status('open'));
    current.addEventListener('history_gap', (message) => {
      const gap = JSON.parse((message as MessageEvent<string>).data) as { reason: string; message: string };
      handlers.gap(gap.reason, gap.message);
      // Reconnecting with the same Last-Event-ID would only repeat the gap: start over from what
      // the server retains (the page drops what it already shows by id), like the client does.
      current.close();
      open(undefined);
    });
    current.onerror = () => handlers.status(current.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
  };
  open(options.after);
  return { close: () => source?.close() };
}
