// Debian's Chromium for the console's browser tests: a context per person with axe-core
// injected, and a page check that screenshots it and fails on any WCAG 2 A/AA violation.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CONSOLE_OUTPUT = fileURLToPath(new URL('../../../test-output/console/', import.meta.url));
const require = createRequire(import.meta.url);

/** Headless Chromium from Debian (Playwright never downloads a browser here). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** A browser context for one person; axe-core is injected as an init script (the page's CSP allows no inline script). */
export async function contextFor(browser: Browser, viewport = { width: 1280, height: 800 }): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport });
  await context.addInitScript({ content: await readFile(require.resolve('axe-core/axe.min.js'), 'utf8') });
  return context;
}

/** Screenshot the page into test-output/console/ and fail on any WCAG 2 A/AA violation axe finds. */
export async function checkPage(page: Page, name: string): Promise<void> {
  await page.getByText('Loading…', { exact: true }).first().waitFor({ state: 'detached' });
  await page.screenshot({ path: join(CONSOLE_OUTPUT, `${name}.png`), fullPage: true });
  // Browser-side code as text: this package compiles for Node, without the DOM's types.
  const violations = await page.evaluate<string[]>(`(async () => {
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations.map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', '));
  })()`);
  assert.deepEqual(violations, [], `accessibility of ${name}`);
}

/** Sign in through the console's form. */
export async function signIn(page: Page, url: string, email: string, password: string): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}
