/**
 * The demo's chat page in a real headless Chromium: asks questions, watches the five events
 * arrive as a timeline, and cuts the connection mid-run in every way a browser meets (network
 * offline, the server's sockets dying, a page reload), then compares what the page shows with
 * what the server's log holds: every event exactly once, in order.
 */
import { until } from '../helpers/wait.js';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { validateLifecycle, type AgentEvent } from '../../src/index.js';
import { startDemoServer, type DemoServer } from '../../examples/demo-server/index.js';
import { describeWithBrowser, launchChromium } from '../helpers/browser.js';

// The README's screenshot is refreshed only on request (AGENTWIRE_SCREENSHOT=1), so a test run
// leaves the work tree clean; otherwise it goes to the OS temp dir (still proving the page renders).
const SCREENSHOT = process.env.AGENTWIRE_SCREENSHOT === '1'
  ? new URL('../../docs/screenshot.png', import.meta.url)
  : pathToFileURL(join(tmpdir(), 'agentwire-demo-screenshot.png'));
/** Per tool call: long enough to act while a run is in progress. */
const TOOL_DELAY_MS = 400;
const WAIT = { timeout: 15_000 };

interface Item {
  id: string;
  seq: number;
  type: string;
  runId: string;
  toolStatus: string | null;
  text: string;
}

describeWithBrowser('demo page in Chromium', () => {
  let demo: DemoServer;
  let browser: Browser;
  let context: BrowserContext;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [demo, browser] = await Promise.all([startDemoServer({ port: 0, toolDelayMs: TOOL_DELAY_MS }), launchChromium()]);
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await demo?.close();
  });

  async function openPage(query: string): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Connection errors while cut off are expected; the page's own order checks log with this prefix.
    page.on('console', (message) => {
      if (message.type() === 'error' && message.text().startsWith('agentwire demo')) pageErrors.push(message.text());
    });
    await page.goto(`${demo.url}${query}`);
    await page.waitForSelector('#status[data-status="open"]', WAIT);
    return page;
  }

  async function ask(page: Page, question: string): Promise<number> {
    const runsBefore = await page.locator('.run').count();
    await page.fill('#question', question);
    await page.click('#ask');
    await page.locator('.run').nth(runsBefore).waitFor(WAIT);
    return runsBefore; // index of the new run
  }

  const run = (page: Page, index: number) => page.locator('.run').nth(index);
  const waitForType = (page: Page, index: number, type: string) => run(page, index).locator(`[data-type="${type}"]`).first().waitFor(WAIT);

  async function items(page: Page): Promise<Item[]> {
    return page.$$eval('[data-event-id]', (nodes) =>
      nodes.map((node) => {
        const el = node as HTMLElement;
        return {
          id: el.dataset.eventId ?? '',
          seq: Number(el.dataset.seq),
          type: el.dataset.type ?? '',
          runId: el.dataset.runId ?? '',
          toolStatus: el.dataset.toolStatus ?? null,
          text: el.textContent ?? '',
        };
      }),
    );
  }

  async function serverEvents(page: Page, userId: string): Promise<AgentEvent[]> {
    const threadId = (await page.textContent('#thread-id')) ?? '';
    return demo.transport.read(threadId, userId);
  }

  /** What the page shows is exactly the server's log of the thread: same ids, same order, nothing twice. */
  async function expectExactlyTheLog(page: Page, userId: string, runs: number): Promise<Item[]> {
    const shown = await items(page);
    const log = await serverEvents(page, userId);
    expect(new Set(shown.map((i) => i.id)).size).toBe(shown.length);
    expect(shown.map((i) => i.id)).toEqual(log.map((e) => e.id));
    expect(shown.map((i) => `${i.runId}#${i.seq}:${i.type}`)).toEqual(log.map((e) => `${e.runId}#${e.seq}:${e.type}`));
    const check = validateLifecycle(log);
    expect(check.ok ? check.runs : check.violation.message).toBe(runs);
    expect(await page.getAttribute('#timeline', 'data-order-violations')).toBe('0');
    return shown;
  }

  const waitForServer = (predicate: () => boolean, what: string): Promise<void> => until(predicate, what, WAIT.timeout, 20);

  let alice: Page;

  it('asks a question and shows the five events live as a timeline', async () => {
    alice = await openPage('?user=alice');
    const index = await ask(alice, 'What is Redis Streams?');
    await waitForType(alice, index, 'agent_completed');

    const shown = await expectExactlyTheLog(alice, 'alice', 1);
    expect(shown.map((i) => i.seq)).toEqual(shown.map((_, n) => n + 1));
    expect(shown.map((i) => i.type)).toEqual([
      'agent_started',
      'agent_thinking',
      'tool_executing', // web_search fails once per thread…
      'tool_completed',
      'agent_thinking',
      'tool_executing', // …and is retried
      'tool_completed',
      'agent_thinking',
      'tool_executing', // summarize
      'tool_completed',
      'agent_completed',
    ]);
    expect(shown[0]?.text).toContain('What is Redis Streams?');
    expect(shown[1]?.text).toContain('Planning how to answer');

    // Each tool call row: name, args, status mark and duration.
    const calls = await alice.$$eval('.tool-call', (rows) =>
      rows.map((row) => ({
        status: (row as HTMLElement).dataset.toolStatus,
        name: row.querySelector('.tool-name')?.textContent,
        args: row.querySelector('.tool-args')?.textContent,
        mark: row.querySelector('.tool-status')?.textContent,
        duration: row.querySelector('.tool-duration')?.textContent,
      })),
    );
    expect(calls.map((c) => [c.name, c.status, c.mark])).toEqual([
      ['web_search', 'failed', '✗'],
      ['web_search', 'succeeded', '✓'],
      ['summarize', 'succeeded', '✓'],
    ]);
    for (const call of calls) {
      expect(JSON.parse(call.args ?? '')).toBeTypeOf('object');
      expect(call.duration).toMatch(/^\d+ ms$/);
      expect(Number.parseInt(call.duration ?? '', 10)).toBeGreaterThanOrEqual(TOOL_DELAY_MS);
    }
    expect(await alice.textContent('.tool-result[data-tool-status="failed"] .tool-detail')).toContain('503');
    expect(await run(alice, index).locator('.answer-text').textContent()).toContain('Answer to "What is Redis Streams?"');
    expect(await run(alice, index).getAttribute('data-completed')).toBe('succeeded');
  });

  it('loses nothing and repeats nothing when the browser goes offline mid-run', async () => {
    const index = await ask(alice, 'How do consumer groups work?');
    const threadId = (await alice.textContent('#thread-id')) ?? '';
    await waitForType(alice, index, 'tool_executing');
    await context.setOffline(true);
    await alice.waitForSelector('#status[data-status="reconnecting"]', WAIT);
    const shownWhileOffline = (await items(alice)).length;
    // The run goes on while the page is cut off: the page must recover these.
    await waitForServer(
      () => demo.transport.read(threadId, 'alice').length >= shownWhileOffline + 2,
      'the run to progress while offline',
    );
    await context.setOffline(false);
    await alice.waitForSelector('#status[data-status="open"]', WAIT);
    await waitForType(alice, index, 'agent_completed');
    await expectExactlyTheLog(alice, 'alice', 2);
  });

  it('the client reconnects by itself after the server side of the connection dies mid-run', async () => {
    const index = await ask(alice, 'What is XAUTOCLAIM for?');
    await waitForType(alice, index, 'tool_executing');
    expect(demo.dropConnections()).toBeGreaterThan(0);
    await alice.waitForSelector('#status[data-status="reconnecting"]', WAIT);
    await waitForType(alice, index, 'agent_completed');
    await alice.waitForSelector('#status[data-status="open"]', WAIT);
    await expectExactlyTheLog(alice, 'alice', 3);
  });

  it('a reload mid-run resumes the thread after the saved cursor: every event once, in order', async () => {
    const index = await ask(alice, 'How long are stream entries kept?');
    await waitForType(alice, index, 'tool_executing');
    await alice.reload();
    await alice.waitForSelector('#status[data-status="open"]', WAIT);
    await waitForType(alice, index, 'agent_completed');
    await expectExactlyTheLog(alice, 'alice', 4);
    // The page showed its saved events and resumed after its cursor: the server resent nothing.
    expect(await alice.getAttribute('#timeline', 'data-duplicates-dropped')).toBe('0');

    mkdirSync(new URL('.', SCREENSHOT), { recursive: true });
    await alice.evaluate(() => window.scrollTo(0, 0));
    await alice.screenshot({ path: SCREENSHOT.pathname, fullPage: true });
  });

  it('works the same over the SSE gateway (EventSource, Last-Event-ID) for another user', async () => {
    const bob = await openPage('?user=bob&transport=sse');
    const first = await ask(bob, 'How do WebSockets reconnect?');
    await waitForType(bob, first, 'tool_executing');
    demo.dropConnections(); // EventSource reconnects with Last-Event-ID
    await waitForType(bob, first, 'agent_completed');
    const second = await ask(bob, 'And Server-Sent Events?');
    await waitForType(bob, second, 'tool_executing');
    await bob.reload();
    await bob.waitForSelector('#status[data-status="open"]', WAIT);
    await waitForType(bob, second, 'agent_completed');
    const shown = await expectExactlyTheLog(bob, 'bob', 2);
    expect(shown.every((i) => !i.runId.includes('alice'))).toBe(true);
    // Alice's page never showed one of Bob's events.
    expect((await items(alice)).some((i) => i.runId.includes('bob'))).toBe(false);
    await bob.close();
  });

  it('raised no error in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
