// Headless-Chromium test of the PentaVision admin UI (system overview page and its toasts).
//
// Run:  npm install && PV_BIN=/path/to/target/debug/pentavision npm test
// Env:  PV_BIN        the pentavision binary (required)
//       CHROMIUM      the Chromium executable (default /usr/bin/chromium, Debian's package)
//       PV_ARTIFACTS  if set, a screenshot is saved there as ui-overview.png
//
// It starts the server on a fresh temporary data dir and a free loopback port, drives the page
// with playwright-core (no browser download), and always stops the server and removes the data
// dir afterwards, also when an assertion fails or the test times out.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TEST_TIMEOUT_MS = 60_000;
const STARTUP_TIMEOUT_MS = 20_000;
const VIEWPORT = { width: 1280, height: 800 };
const GREEN = 'rgb(34, 197, 94)';
const BLACK = 'rgb(0, 0, 0)';
// The toast component: visible for 10 s, then `toast--fading`, then removed ~0.7 s later.
const TOAST_VISIBLE_MS = 10_000;

let server = null; // the pentavision child process
let serverExit = null; // a promise of { code, signal }
let dataDir = null;
let browser = null;
const serverOutput = []; // last lines of stdout/stderr, for failure messages

function remember(stream, tag) {
  createInterface({ input: stream }).on('line', (line) => {
    serverOutput.push(`${tag}: ${line}`);
    if (serverOutput.length > 200) serverOutput.shift();
  });
}

/** Start pentavision and resolve with the base URL it prints on stdout. */
async function startServer() {
  const bin = process.env.PV_BIN;
  if (!bin) {
    throw new Error(
      'PV_BIN is not set: point it at the pentavision binary, e.g. ' +
        'PV_BIN=/work/target/debug/pentavision npm test ' +
        '(build it with `cargo build -p pentavision`).',
    );
  }
  if (!existsSync(bin)) throw new Error(`PV_BIN=${bin} does not exist: build pentavision first.`);

  dataDir = await mkdtemp(join(tmpdir(), 'pv-ui-test-'));
  server = spawn(bin, ['--data-dir', dataDir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serverExit = new Promise((resolve) => {
    server.once('exit', (code, signal) => resolve({ code, signal }));
  });
  remember(server.stderr, 'stderr');

  return await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`pentavision printed no URL within ${STARTUP_TIMEOUT_MS} ms:\n${serverOutput.join('\n')}`)),
      STARTUP_TIMEOUT_MS,
    );
    server.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${err.message}`));
    });
    serverExit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`pentavision exited early (code ${code}, signal ${signal}):\n${serverOutput.join('\n')}`));
    });
    createInterface({ input: server.stdout }).on('line', (line) => {
      serverOutput.push(`stdout: ${line}`);
      if (serverOutput.length > 200) serverOutput.shift();
      const m = /PentaVision \S+ is running at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
}

/** SIGTERM the server (SIGKILL if it lingers), close the browser, remove the data dir. */
async function cleanup() {
  if (browser) {
    await browser.close().catch(() => {});
    browser = null;
  }
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM');
    let timer;
    const lingered = await Promise.race([
      serverExit.then(() => false),
      new Promise((r) => { timer = setTimeout(() => r(true), 10_000); }),
    ]);
    clearTimeout(timer); // a pending timer would keep the runner alive for 10 s
    if (lingered) {
      console.error('pentavision did not stop within 10 s of SIGTERM; sending SIGKILL');
      server.kill('SIGKILL');
      await serverExit;
    }
  }
  server = null;
  if (dataDir) {
    await rm(dataDir, { recursive: true, force: true });
    dataDir = null;
  }
}

// Last resort if the runner exits without running `after` (e.g. an uncaught error).
process.once('exit', () => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
});

after(cleanup, { timeout: 30_000 });

// Runs in the page before any of its scripts: records toast lifecycle events (page clock) and
// CSP violations, so timing is measured in the page rather than guessed from the test side.
function instrumentPage() {
  window.__pv = { toastEvents: [], csp: [] };
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__pv.csp.push(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
  });
  new MutationObserver((records) => {
    const now = performance.now();
    for (const r of records) {
      if (r.type === 'childList') {
        for (const n of r.addedNodes) {
          if (n.nodeType === 1 && n.classList.contains('toast')) {
            window.__pv.toastEvents.push({ kind: 'added', text: n.textContent, t: now });
          }
        }
        for (const n of r.removedNodes) {
          if (n.nodeType === 1 && n.classList.contains('toast')) {
            window.__pv.toastEvents.push({ kind: 'removed', text: n.textContent, t: now });
          }
        }
      } else if (r.type === 'attributes' && r.target.classList.contains('toast--fading')
        && !(r.oldValue || '').split(/\s+/).includes('toast--fading')) {
        window.__pv.toastEvents.push({ kind: 'fading', text: r.target.textContent, t: now });
      }
    }
  }).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['class'], attributeOldValue: true,
  });
}

const toastEvents = (page) => page.evaluate(() => window.__pv.toastEvents);
const eventTime = (events, kind, text) => events.find((e) => e.kind === kind && e.text.includes(text))?.t;

test('overview page: title, initial toast look/placement/lifetime, refresh toast, no console errors or CSP violations',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const baseUrl = await startServer();
    t.diagnostic(`server at ${baseUrl}`);

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);

    const consoleErrors = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(`console: ${msg.text()} (${msg.location().url})`);
    });
    page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
    await page.addInitScript(instrumentPage);

    const response = await page.goto(baseUrl, { waitUntil: 'load' });
    assert.equal(response.status(), 200, 'GET / answers 200');
    assert.match(await page.title(), /PentaVision/, 'page title names PentaVision');

    // --- The initial toast: visible, text, colours, bottom-right placement.
    const first = page.locator('#toasts .toast').first();
    await first.waitFor({ state: 'visible' });
    assert.equal(await page.locator('#toasts .toast').count(), 1, 'exactly one toast on load');
    assert.match(await first.textContent(), /^All 3 databases are ready\.$/);
    const style = await first.evaluate((el) => {
      const cs = getComputedStyle(el);
      return { background: cs.backgroundColor, color: cs.color, opacity: cs.opacity };
    });
    assert.equal(style.background, GREEN, 'toast background is green');
    assert.equal(style.color, BLACK, 'toast text is black');
    assert.equal(style.opacity, '1', 'toast is fully opaque before fading');

    const box = await first.boundingBox();
    assert.ok(box, 'toast has a bounding box');
    const right = box.x + box.width;
    const bottom = box.y + box.height;
    const where = `box ${JSON.stringify(box)} in viewport ${VIEWPORT.width}x${VIEWPORT.height}`;
    assert.ok(box.x >= VIEWPORT.width / 2 && box.y >= VIEWPORT.height / 2, `toast is in the bottom-right quadrant: ${where}`);
    assert.ok(right <= VIEWPORT.width && VIEWPORT.width - right <= 40, `toast's right edge is within 40px of the viewport's: ${where}`);
    assert.ok(bottom <= VIEWPORT.height && VIEWPORT.height - bottom <= 40, `toast's bottom is within 40px of the viewport's: ${where}`);

    // --- Refresh status: a second toast.
    await page.locator('[data-action=refresh-status]').click();
    const second = page.locator('#toasts .toast', { hasText: 'Status refreshed' });
    await second.waitFor({ state: 'visible' });
    assert.equal(await second.textContent(), 'Status refreshed: 3 of 3 databases ready.');
    assert.equal(await page.locator('#toasts .toast').count(), 2, 'refresh adds a second toast');
    assert.equal(await second.evaluate((el) => getComputedStyle(el).backgroundColor), GREEN, 'second toast is green too');

    if (process.env.PV_ARTIFACTS) {
      await mkdir(process.env.PV_ARTIFACTS, { recursive: true });
      const shot = join(process.env.PV_ARTIFACTS, 'ui-overview.png');
      await page.screenshot({ path: shot });
      t.diagnostic(`screenshot: ${shot}`);
    }

    // --- Lifetime of the initial toast: still there at ~9 s, fading at ~10 s, gone by ~11 s.
    const firstText = 'All 3 databases are ready.';
    const addedAt = eventTime(await toastEvents(page), 'added', firstText);
    assert.ok(addedAt !== undefined, 'the initial toast\'s insertion was observed');
    const untilNine = addedAt + 9_000 - (await page.evaluate(() => performance.now()));
    if (untilNine > 0) await page.waitForTimeout(untilNine);
    const atNine = await page.evaluate((text) => {
      const el = [...document.querySelectorAll('#toasts .toast')].find((e) => e.textContent === text);
      return { age: performance.now() - window.__pv.toastEvents.find((e) => e.kind === 'added' && e.text === text).t,
        present: !!el, fading: !!el && el.classList.contains('toast--fading'), opacity: el && getComputedStyle(el).opacity };
    }, firstText);
    assert.ok(atNine.present, `initial toast still present at ${Math.round(atNine.age)} ms (vanished early)`);
    assert.ok(!atNine.fading && atNine.opacity === '1', `initial toast not yet fading at ${Math.round(atNine.age)} ms: ${JSON.stringify(atNine)}`);

    await page.waitForFunction(
      (text) => ![...document.querySelectorAll('#toasts .toast')].some((e) => e.textContent === text),
      firstText,
      { timeout: Math.max(1_000, addedAt + 12_000 - (await page.evaluate(() => performance.now()))), polling: 100 },
    );
    const events = await toastEvents(page);
    const fadingAt = eventTime(events, 'fading', firstText);
    const removedAt = eventTime(events, 'removed', firstText);
    assert.ok(fadingAt !== undefined, `the initial toast got toast--fading before removal: ${JSON.stringify(events)}`);
    assert.ok(removedAt !== undefined, 'the initial toast was removed');
    const fadeAfter = fadingAt - addedAt;
    const removeAfter = removedAt - addedAt;
    t.diagnostic(`initial toast: fading after ${Math.round(fadeAfter)} ms, removed after ${Math.round(removeAfter)} ms`);
    assert.ok(fadeAfter >= TOAST_VISIBLE_MS - 100 && fadeAfter <= TOAST_VISIBLE_MS + 1_000,
      `toast--fading added after about 10 s (was ${Math.round(fadeAfter)} ms)`);
    assert.ok(removedAt - fadingAt >= 500 && removedAt - fadingAt <= 1_500,
      `removed about 0.7 s after fading began (was ${Math.round(removedAt - fadingAt)} ms)`);
    assert.ok(removeAfter <= 12_000, `removed within 12 s (was ${Math.round(removeAfter)} ms)`);
    assert.equal(await second.count(), 1, 'the refresh toast (added later) is still shown');

    // --- No console errors, uncaught exceptions or CSP violations at any point.
    const csp = await page.evaluate(() => window.__pv.csp);
    assert.deepEqual(csp, [], 'no CSP violations');
    assert.deepEqual(consoleErrors, [], 'no console errors or page errors');
  });
