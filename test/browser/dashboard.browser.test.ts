import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Cloud, registerProject, startCloud } from '@bematic/cloud';
import { SYSTEM_AGENT_ID, startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal } from '../e2e/support.js';
import { launchBrowser, screenshot, seriousViolations } from './browser.js';

const CONSOLE = 'console:local';

/**
 * The dashboard in a real browser (Debian's chromium through playwright-core)
 * against the real server, with real tasks typed into the console and run by
 * the real agent and Claude Code against the scripted model.
 */
// Chromium plus Claude Code per test: generous on a loaded machine (the budget, not an assertion).
describe('dashboard in a browser', { timeout: 120_000 }, () => {
  let system: TestSystem;
  let browser: Browser;
  let context: BrowserContext;
  let restarted: Cloud | undefined;

  beforeAll(async () => {
    system = await startTestSystem({ settings: { BEMATIC_PROGRESS_INTERVAL_MS: '200' } });
    await registerProject(system.cloud.repos, {
      channelId: CONSOLE,
      agentId: SYSTEM_AGENT_ID,
      localPath: system.projectDir,
      name: 'webapp',
    });
    await writeFile(path.join(system.projectDir, 'auth.ts'), 'export const ok = (p: string) => p === p;\n');
    const git = (...args: string[]) => execFileSync('git', args, { cwd: system.projectDir });
    git('add', 'auth.ts');
    git('-c', 'user.email=ci@bematic.dev', '-c', 'user.name=ci', 'commit', '-qm', 'auth');
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await restarted?.close();
    await system?.close();
  });

  const signIn = async (cloud: Cloud): Promise<Page> => {
    const page = await context.newPage();
    await page.goto(await cloud.loginUrl());
    await page.getByRole('textbox', { name: 'Message to Bematic' }).waitFor();
    return page;
  };

  /** Types into the console with the keyboard only, as a person would. */
  const typeRequest = async (page: Page, text: string) => {
    const input = page.getByRole('textbox', { name: 'Message to Bematic' });
    await input.focus();
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  };

  it('refuses to show data before sign-in and offers the sign-in form', async () => {
    const fresh = await browser.newContext();
    const page = await fresh.newPage();
    await page.goto(system.cloud.url);
    await expect(page.getByRole('heading', { name: 'Sign in to Bematic' }).isVisible()).resolves.toBe(true);
    expect(await page.locator('#messages').count()).toBe(0);
    await fresh.close();
  });

  it('runs a task from the console; its page shows the transcript, the diff, the result and the cost', async () => {
    system.model.setScript([
      turn.textThenTool('Looking at auth.ts.', 'Read', { file_path: 'auth.ts' }),
      turn.textThenTool('Fixing the comparison.', 'Edit', {
        file_path: 'auth.ts',
        old_string: 'p === p',
        new_string: 'p === SECRET',
      }),
      turn.text('Fixed: `ok()` compared the password with **itself**.\n\n- one change in `auth.ts`', {
        usage: { input_tokens: 1200, output_tokens: 300, cache_read_input_tokens: 500 },
      }),
    ]);
    const page = await signIn(system.cloud);
    const done = nextTerminal(system);
    await typeRequest(page, 'code fix the login bug in auth.ts');
    const { event, task } = await done;
    expect(event).toBe('task.completed');

    const link = page.getByRole('link', { name: `Open task ${task.id}` });
    await link.waitFor();
    await page.locator('.totals div', { hasText: 'Done' }).getByText('1', { exact: true }).waitFor();
    await screenshot(page, 'dashboard-1920');
    expect(await seriousViolations(page)).toEqual([]);

    await link.click();
    await page.waitForURL(`**/tasks/${task.id}`);
    await page.locator('#transcript').waitFor();
    const transcript = await page.locator('#transcript').textContent();
    expect(transcript).toContain('Reading auth.ts');
    expect(transcript).toContain('Editing auth.ts');
    expect(transcript).toContain('Fixing the comparison.');
    const diff = await page.locator('#diff').textContent();
    expect(diff).toContain('+++ b/auth.ts');
    expect(diff).toContain('-p === p');
    expect(diff).toContain('+p === SECRET');
    expect(await page.locator('#result strong').textContent()).toBe('itself');
    const row = await system.cloud.repos.tasks.findById(task.id);
    const fact = (label: string) =>
      page.locator('#usage div', { hasText: label }).locator('dd').textContent();
    expect(row!.inputTokens).toBeGreaterThan(1200);
    expect(row!.costUsd).toBeGreaterThan(0);
    expect(await fact('Input tokens')).toBe(row!.inputTokens.toLocaleString('en-US'));
    expect(await fact('Cost')).toBe(`$${row!.costUsd.toFixed(2)}`);
    expect(await page.getByRole('heading', { name: 'Audit trail' }).isVisible()).toBe(true);
    await screenshot(page, 'task-1920');
    expect(await seriousViolations(page)).toEqual([]);

    const background = async () =>
      String(await page.evaluate('getComputedStyle(document.body).backgroundColor'));
    expect(await background()).toBe('rgb(245, 246, 248)');
    await page.emulateMedia({ colorScheme: 'dark' });
    expect(await background()).toBe('rgb(16, 19, 24)');
    await screenshot(page, 'task-1920-dark');
    expect(await seriousViolations(page)).toEqual([]);
    await page.emulateMedia({ colorScheme: 'light' });

    await page.setViewportSize({ width: 800, height: 900 });
    await screenshot(page, 'task-800');
    await page.goto(system.cloud.url);
    await page.getByRole('link', { name: `Open task ${task.id}` }).waitFor();
    const send = page.getByRole('button', { name: 'Send' });
    const box = await send.boundingBox();
    expect(box && box.x + box.width).toBeLessThanOrEqual(800);
    // One task: nothing more to page through.
    expect(await page.getByRole('button', { name: 'Show more' }).isVisible()).toBe(false);
    await screenshot(page, 'dashboard-800');
    expect(await seriousViolations(page)).toEqual([]);
    // The theme menu overrides the system's choice, and is kept.
    await page.getByRole('combobox', { name: 'Colour theme' }).selectOption('dark');
    expect(await page.locator('html').getAttribute('data-theme')).toBe('dark');
    expect(await background()).toBe('rgb(16, 19, 24)');
    await screenshot(page, 'dashboard-800-dark');
    expect(await seriousViolations(page)).toEqual([]);
    await page.reload();
    await page.getByRole('link', { name: `Open task ${task.id}` }).waitFor();
    expect(await page.locator('html').getAttribute('data-theme')).toBe('dark');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.getByRole('combobox', { name: 'Colour theme' }).selectOption('light');
    expect(await background()).toBe('rgb(245, 246, 248)');
    await page.getByRole('combobox', { name: 'Colour theme' }).selectOption('system');
    expect(await background()).toBe('rgb(16, 19, 24)');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.close();
  });

  it('pages through the agents with "Show more", online first, counting all of them, and filters them', async () => {
    const { repos } = system.cloud;
    for (let i = 0; i < 120; i++) {
      const n = (i * 37) % 120;
      await repos.agents.upsert({
        id: `rack-agent-${String(n).padStart(3, '0')}`,
        hostname: `rack-${n % 4}.lab`,
        status: 'offline',
        lastSeenAt: Date.now() - 60_000,
      });
    }
    const counts = await repos.agents.counts();
    expect(counts.total).toBeGreaterThan(100);
    const order = (await repos.agents.list())
      .sort((a, b) => (a.status === b.status ? (a.id < b.id ? -1 : 1) : a.status === 'online' ? -1 : 1))
      .map((a) => a.id);
    expect(order[0]).toBe(SYSTEM_AGENT_ID);

    const page = await signIn(system.cloud);
    const panel = page.locator('#agents-panel');
    const cards = panel.locator('article.agent');
    const shown = async () => cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-agent')));
    await panel.getByText(`${counts.online} of ${counts.total} online`).waitFor();
    await panel.getByText(`50 of ${counts.total} agents shown`).waitFor();
    expect(await shown()).toEqual(order.slice(0, 50));
    expect(await cards.first().textContent()).toContain('online');
    const more = panel.getByRole('button', { name: 'Show more agents' });
    await more.click();
    await panel.getByText(`100 of ${counts.total} agents shown`).waitFor();
    await more.click();
    await panel.getByText(`${counts.total} of ${counts.total} agents shown`).waitFor();
    expect(await shown()).toEqual(order);
    expect(await more.isVisible()).toBe(false);
    await screenshot(page, 'agents-all-1920');
    expect(await seriousViolations(page)).toEqual([]);

    await panel.getByRole('combobox', { name: 'Agent status' }).selectOption('online');
    await panel
      .getByText(`${counts.online} of ${counts.online} agent${counts.online === 1 ? '' : 's'} shown`)
      .waitFor();
    expect(await shown()).toEqual(order.slice(0, counts.online));
    await panel.getByRole('combobox', { name: 'Agent status' }).selectOption('offline');
    await panel.getByText(`50 of ${counts.offline} agents shown`).waitFor();
    expect(await shown()).toEqual(order.slice(counts.online, counts.online + 50));
    await panel.getByRole('searchbox', { name: 'Search agents' }).fill('RACK-3');
    const rack3 = order.filter((id) => /^rack-agent-\d+$/.test(id) && Number(id.slice(-3)) % 4 === 3);
    await panel.getByText(`${rack3.length} agents shown`, { exact: true }).waitFor();
    expect(await shown()).toEqual(rack3);
    await panel.getByRole('searchbox', { name: 'Search agents' }).fill('no-such-agent');
    await panel.getByText('No agent matches these filters.').waitFor();
    expect(await more.isVisible()).toBe(false);
    await page.close();
  });

  it('cancels a running task from its page', async () => {
    system.model.setScript([turn.text('This will take a long time…', { delayMs: 60_000 })]);
    const page = await signIn(system.cloud);
    const started = new Promise<string>((resolve) => {
      const off = system.cloud.events.on('task.started', ({ task }) => {
        off();
        resolve(task.id);
      });
    });
    await typeRequest(page, 'code refactor everything slowly');
    const id = await started;
    await page.goto(`${system.cloud.url}/tasks/${id}`);
    const cancel = page.getByRole('button', { name: 'Cancel task' });
    await cancel.waitFor();
    const done = nextTerminal(system, (t) => t.id === id);
    await cancel.click();
    await page.locator('.notice', { hasText: 'Cancelling task' }).waitFor();
    const { event } = await done;
    expect(event).toBe('task.cancelled');
    await page.locator('.task-head .badge', { hasText: 'Cancelled' }).waitFor();
    expect(await page.getByRole('button', { name: 'Cancel task' }).count()).toBe(0);
    await page.close();
  });

  it('keeps the console conversation across a cloud restart', async () => {
    await system.cloud.close();
    restarted = await startCloud({ config: system.config });
    const page = await signIn(restarted);
    const log = page.getByRole('log', { name: 'Conversation' });
    await log.getByText('code fix the login bug in auth.ts').waitFor();
    await log.getByText('code refactor everything slowly').waitFor();
    expect(await log.locator('article.thread').count()).toBeGreaterThanOrEqual(2);
    await screenshot(page, 'dashboard-after-restart-1920');
    await page.close();
  });
});
