import { generateRunId, MemoryTransport } from '../../src/index.js';
import { RunEmitter } from '../../src/bridge/run-emitter.js';
import { eventJson } from '../../src/events/json.js';
import { EVENT_BYTES } from '../lib/events.js';
import { collectGarbage } from '../lib/measure.js';
import type { BenchRow } from '../lib/report.js';

export interface LogHeapOptions {
  /** Events retained (spread over `threads`). */
  events: number;
  threads: number;
}

const WORDS = 'the agent compares the retrieved passages with the question and drafts the next step of its answer '.repeat(4);

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) collectGarbage();
  return process.memoryUsage().heapUsed;
}

/**
 * Heap the retained in-memory log costs per event: events built the way agents build them
 * (`RunEmitter`: validated, serialized once) are appended to a `MemoryTransport` whose bounds hold
 * them all; the V8 heap after full collections, before and after, over the number of events, is
 * held against the events' average JSON length (their UTF-8 size: the text is ASCII). The bench
 * keeps no reference to the events: what remains is what the log retains.
 */
export function logHeapSuite(options: LogHeapOptions): BenchRow[] {
  const { events, threads } = options;
  const before = heapAfterGc();
  const transport = new MemoryTransport({
    maxEventsPerThread: events,
    maxTotalEvents: events,
    maxBytesPerThread: 1024 * 2 ** 20,
    maxTotalBytes: 1024 * 2 ** 20,
    maxThreads: threads + 16,
  });
  const emitters = Array.from({ length: threads }, (_, t) => {
    const threadId = `heap-t${t}`;
    return new RunEmitter({ runId: generateRunId(threadId), threadId, userId: `heap-u${t}`, agent: 'bench' });
  });
  // Pad the thinking text so that an event is about EVENT_BYTES of JSON.
  const probe = eventJson(new RunEmitter(emitters[0]!.identity).emit('agent_thinking', { text: '' }).event);
  const text = WORDS.slice(0, Math.max(0, EVENT_BYTES - probe.length));
  let jsonChars = 0;
  for (let t = 0; t < threads; t++) {
    const event = emitters[t]!.emit('agent_started', { metadata: {} }).event;
    jsonChars += eventJson(event).length;
    transport.append(event);
  }
  for (let i = threads; i < events; i++) {
    const event = emitters[i % threads]!.emit('agent_thinking', { text }).event;
    jsonChars += eventJson(event).length;
    transport.append(event);
  }
  const after = heapAfterGc();
  if (transport.eventCount !== events) throw new Error(`log-heap: the log retains ${transport.eventCount} of ${events} events`);
  const perEvent = (after - before) / events;
  const json = jsonChars / events;
  void transport.close();
  return [
    {
      suite: 'log-heap',
      case: `retained MemoryTransport log, heap per event (${events.toLocaleString('en-US')} events, ${threads} threads)`,
      value: perEvent,
      unit: 'B',
      baseline: json,
      baselineName: "the event's JSON",
      ratio: perEvent / json,
      target: '≤ 1.5× JSON size',
      met: perEvent / json <= 1.5,
      notes: 'V8 heapUsed after full GCs, (after − before) / events; events built by RunEmitter (validated, serialized once), appended with MemoryTransport.append',
    },
  ];
}
