/**
 * The demo page's Allow / Deny and Stop buttons in a real headless Chromium: a run that asks to
 * publish waits for the user; clicking Allow lets the tool run, Deny fails it with TOOL_DENIED,
 * Stop cancels a run in progress. What the page shows is compared with the server's log.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { validateLifecycle, type AgentEvent } from '../../src/index.js';
import { startDemoServer, type DemoServer } from '../../examples/demo-server/index.js';
import { describeWithBrowser, launchChromium } from '../helpers/browser.js';

const WAIT = { timeout: 15_000 };

describeWithBrowser('demo page: Allow / Deny and Stop in Chromium', () => {
  let demo: DemoServer;
  let browser: Browser;

  beforeAll(async () => {
    [demo, browser] = await Promise.all([startDemoServer({ port: 0, toolDelayMs: 300 }), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  async function openPage(query: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${demo.url}${query}`);
    await page.waitForSelector('#status[data-status="open"]', WAIT);
    return page;
  }

  async function ask(page: Page, question: string): Promise<number> {
    const before = await page.locator('.run').count();
    await page.fill('#question', question);
    await page.click('#ask');
    await page.locator('.run').nth(before).waitFor(WAIT);
    return before;
  }

  async function log(page: Page, userId: string): Promise<AgentEvent[]> {
    return demo.transport.read((await page.textContent('#thread-id')) ?? '', userId);
  }

  async function shownTypes(page: Page, index: number): Promise<string[]> {
    return page.locator('.run').nth(index).locator('[data-event-id]').evaluateAll((nodes) => nodes.map((node) => (node as HTMLElement).dataset.type ?? ''));
  }

  for (const transport of ['websocket', 'sse'] as const) {
    it(`${transport}: Allow runs the tool, Deny fails it with TOOL_DENIED; the page shows the log`, async () => {
      const page = await openPage(`?user=alice&transport=${transport}`);
      const allowed = await ask(page, 'Please publish the Redis notes');
      const run = page.locator('.run').nth(allowed);
      await run.locator('.answer-allow').click(WAIT);
      await run.locator('[data-type="agent_completed"]').waitFor(WAIT);
      expect(await run.locator('[data-type="user_answered"]').getAttribute('data-answer')).toBe('allowed');
      expect(await run.getAttribute('data-completed')).toBe('succeeded');
      expect(await run.locator('.answer-text').last().textContent()).toContain('(published)');

      const denied = await ask(page, 'publish the draft too');
      const second = page.locator('.run').nth(denied);
      await second.locator('.answer-deny').click(WAIT);
      await second.locator('[data-type="agent_completed"]').waitFor(WAIT);
      expect(await second.locator('[data-type="user_answered"]').getAttribute('data-answer')).toBe('denied');
      expect(await second.locator('.tool-result[data-tool-status="failed"] .tool-detail').last().textContent()).toContain('denied');
      expect(await second.locator('.answer-text').last().textContent()).toContain('not published: TOOL_DENIED');
      expect(await second.locator('.approval').count()).toBe(0);

      const events = await log(page, 'alice');
      const check = validateLifecycle(events);
      expect(check.ok ? check.runs : check.violation.message).toBe(2);
      // The page shows exactly the log: the question, the answer and the result, in order.
      const shown = [...(await shownTypes(page, allowed)), ...(await shownTypes(page, denied))];
      expect(shown).toEqual(events.map((event) => event.type));
      expect(events.filter((event) => event.type === 'user_answered')).toHaveLength(2);
      await page.close();
    });
  }

  it('Stop cancels a run waiting for approval; the buttons go away', async () => {
    const page = await openPage('?user=bob');
    const index = await ask(page, 'publish and wait');
    const run = page.locator('.run').nth(index);
    await run.locator('.answer-allow').waitFor(WAIT);
    await run.locator('.stop-run').click();
    await run.locator('[data-type="agent_completed"]').waitFor(WAIT);
    expect(await run.getAttribute('data-completed')).toBe('cancelled');
    expect(await run.locator('.approval').count()).toBe(0);
    expect(await run.locator('.stop-run').count()).toBe(0);
    const events = await log(page, 'bob');
    expect(events.find((event) => event.type === 'tool_completed' && event.data.tool === 'publish_answer')).toMatchObject({
      data: { status: 'failed', error: { name: 'AbortError' } },
    });
    await page.close();
  });
});
