// Shared plumbing for the headless-Chromium tests of the PentaVision admin UI: start a
// pentavision server on a fresh data dir, launch Debian's Chromium, drive sign-in, compute TOTP
// codes, and always clean up (servers stopped, data dirs removed, browsers closed), also when an
// assertion fails or a test times out.
//
// Env:  PV_BIN        the pentavision binary (required)
//       CHROMIUM      the Chromium executable (default /usr/bin/chromium, Debian's package)
//       PV_ARTIFACTS  if set, tests save screenshots there

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { spawn as spawnChild } from 'node:child_process';
import { createInterface as lines } from 'node:readline';

export const TEST_TIMEOUT_MS = 60_000;
const STARTUP_TIMEOUT_MS = 20_000;
export const VIEWPORT = { width: 1280, height: 800 };
export const GREEN = 'rgb(34, 197, 94)';
export const BLACK = 'rgb(0, 0, 0)';

/** Everything started and not yet cleaned up: { kind: 'server' | 'browser', value }. */
const live = new Set();

// Last resort if the runner exits without running the cleanup hooks (e.g. an uncaught error).
process.once('exit', () => {
  for (const item of live) {
    if (item.kind === 'server' && item.value.proc.exitCode === null) item.value.proc.kill('SIGKILL');
  }
});

/**
 * Start pentavision on a fresh temporary data dir and a free loopback port (`env`: extra
 * environment, e.g. `PV_RECORDING__SEGMENT_SECONDS`). Resolves once it has
 * printed its start-up banner, with
 *   { proc, exit, dataDir, port, url (http://127.0.0.1:PORT/), base (http://localhost:PORT — the
 *     passkey origin), loginLine, setupCode, output (last lines of stdout/stderr) }.
 * Call stopServer() (or cleanupAll()) afterwards.
 */
export async function startServer({ env = {} } = {}) {
  const bin = process.env.PV_BIN;
  if (!bin) {
    throw new Error(
      'PV_BIN is not set: point it at the pentavision binary, e.g. ' +
        'PV_BIN=/work/target/debug/pentavision npm test ' +
        '(build it with `cargo build -p pentavision`).',
    );
  }
  if (!existsSync(bin)) throw new Error(`PV_BIN=${bin} does not exist: build pentavision first.`);

  const dataDir = await mkdtemp(join(tmpdir(), 'pv-ui-test-'));
  const proc = spawn(bin, ['--data-dir', dataDir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const output = [];
  const remember = (line) => {
    output.push(line);
    if (output.length > 200) output.shift();
  };
  const server = {
    proc,
    dataDir,
    output,
    exit: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  const item = { kind: 'server', value: server };
  live.add(item);
  server.item = item;
  createInterface({ input: proc.stderr }).on('line', (line) => remember(`stderr: ${line}`));

  const banner = { url: null, loginLine: null, setupCode: null };
  let afterFirstLogin = false;
  await new Promise((resolve, reject) => {
    const fail = (msg) => {
      clearTimeout(timer);
      reject(new Error(`${msg}:\n${output.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`pentavision printed no start-up banner within ${STARTUP_TIMEOUT_MS} ms`),
      STARTUP_TIMEOUT_MS);
    proc.once('error', (err) => fail(`cannot start ${bin}: ${err.message}`));
    server.exit.then(({ code, signal }) => fail(`pentavision exited early (code ${code}, signal ${signal})`));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      remember(`stdout: ${line}`);
      let m;
      // The banner names the browser address (localhost, where passkeys work); Node's own
      // requests use 127.0.0.1 on the same port.
      if ((m = /PentaVision \S+ is running at http:\/\/(?:127\.0\.0\.1|localhost):(\d+)\//.exec(line))) {
        banner.url = `http://127.0.0.1:${m[1]}/`;
      } else if (/First login: open \S+, sign in as `Thalia` with the one-time setup code/.test(line)) {
        banner.loginLine = line.trim();
        afterFirstLogin = true;
      } else if (afterFirstLogin && banner.setupCode === null
        && (m = /^\s*([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})\s*$/.exec(line))) {
        banner.setupCode = m[1];
      } else if (/Stop with Ctrl-C\./.test(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  assert.ok(banner.url, `the banner names the URL:\n${output.join('\n')}`);
  assert.ok(banner.loginLine, `a fresh server prints the first-login line:\n${output.join('\n')}`);
  assert.ok(banner.setupCode, `the setup code follows the first-login line:\n${output.join('\n')}`);
  server.url = banner.url;
  server.port = Number(new URL(banner.url).port);
  // Passkeys are bound to the host `localhost`: the browser must use it, not 127.0.0.1.
  server.base = `http://localhost:${server.port}`;
  server.loginLine = banner.loginLine;
  server.setupCode = banner.setupCode;
  server.setupCodeFile = join(dataDir, 'setup-code.txt');
  return server;
}

/** SIGTERM the server (SIGKILL if it lingers) and remove its data dir. */
export async function stopServer(server) {
  if (!server) return;
  const { proc } = server;
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGTERM');
    let timer;
    const lingered = await Promise.race([
      server.exit.then(() => false),
      new Promise((r) => { timer = setTimeout(() => r(true), 10_000); }),
    ]);
    clearTimeout(timer); // a pending timer would keep the runner alive for 10 s
    if (lingered) {
      console.error('pentavision did not stop within 10 s of SIGTERM; sending SIGKILL');
      proc.kill('SIGKILL');
      await server.exit;
    }
  }
  await rm(server.dataDir, { recursive: true, force: true });
  live.delete(server.item);
}

/** Launch Debian's Chromium headless; `args`: extra command-line switches. */
export async function launchBrowser({ args = [] } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
  });
  const item = { kind: 'browser', value: browser };
  live.add(item);
  browser.once('disconnected', () => live.delete(item));
  return browser;
}

/** Close every browser and stop every server still running (for `after` hooks). */
export async function cleanupAll() {
  for (const item of [...live]) {
    if (item.kind === 'browser') await item.value.close().catch(() => {});
  }
  for (const item of [...live]) {
    if (item.kind === 'server') await stopServer(item.value);
  }
}

// Runs in the page before any of its scripts: records toast lifecycle events (page clock) and
// CSP violations, so timing is measured in the page rather than guessed from the test side.
export function instrumentPage() {
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

/**
 * A page in a fresh context, instrumented, collecting console errors, page errors and CSP
 * violations across navigations. `problems()` returns those not matched by `allowed` (regexps
 * for expected errors, e.g. the 401 of a refused sign-in).
 */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  // CSP violations are reported to the console by Chromium too, so they land in `errors`.
  await page.addInitScript(instrumentPage);
  return { context, page, problems: (allowed = []) => errors.filter((e) => !allowed.some((re) => re.test(e))) };
}

/** The texts of the toasts shown now (for failure messages). */
export const toastTexts = (page) =>
  page.locator('#toasts .toast').allTextContents().catch((e) => [`(cannot read toasts: ${e.message})`]);

/** Wait until the page is at `path` (on its own origin), with the toasts in the failure message. */
export async function expectPath(page, path, what, timeout = 15_000) {
  try {
    await page.waitForURL((u) => u.pathname === path, { timeout });
  } catch (e) {
    throw new Error(`${what}: expected to land on ${path}, still at ${page.url()}; toasts: `
      + `${JSON.stringify(await toastTexts(page))} (${e.message.split('\n')[0]})`);
  }
  await page.waitForLoadState('load');
}

/** Wait for a toast containing `text`; on timeout, say which toasts and page there were. */
export async function waitToast(page, text, timeout = 15_000) {
  const toast = page.locator('#toasts .toast', { hasText: text });
  try {
    await toast.waitFor({ state: 'visible', timeout });
  } catch (e) {
    throw new Error(`no toast ${JSON.stringify(text)} at ${page.url()}; toasts: `
      + `${JSON.stringify(await toastTexts(page))} (${e.message.split('\n')[0]})`);
  }
  return toast;
}

/** Sign in on /login with the password form (the code field is left alone). */
export async function passwordSignIn(page, username, password) {
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  await page.locator('#login-form button[type=submit]').click();
}

/** POST /api/v1/auth/login from Node (no browser, no cookies kept); resolves with the Response. */
export function apiLogin(server, body) {
  return fetch(new URL('/api/v1/auth/login', server.url), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
  });
}

// ---- RFC 6238 TOTP (HMAC-SHA1, 30-second steps, 6 digits), as an authenticator app computes it.

export const TOTP_STEP_SECONDS = 30;

/** RFC 4648 base32 (A–Z, 2–7; padding, spaces and case ignored) to bytes. */
export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.toUpperCase().replace(/[\s=]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${JSON.stringify(ch)} in ${JSON.stringify(text)}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** The RFC 4226 HOTP value of `key` (bytes) at `counter`, `digits` long. */
export function hotp(key, counter, digits = 6) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** The TOTP step at `ms` (Unix milliseconds). */
export const totpStep = (ms = Date.now()) => Math.floor(ms / 1000 / TOTP_STEP_SECONDS);

/** The 6-digit code for the base32 `secret` at `step`. */
export const totpCode = (secret, step = totpStep()) => hotp(base32Decode(secret), step, 6);

/**
 * Start a simulated camera (the pv-media `testcam` example, `PV_TESTCAM`) serving `clip`
 * (`moving`, `clock`, …); resolves with { proc, url }. End it with `proc.stdin.end()`.
 */
export function startCamera(clip = 'moving') {
  const bin = process.env.PV_TESTCAM;
  if (!bin) throw new Error('PV_TESTCAM is not set: point it at target/debug/examples/testcam');
  const proc = spawnChild(bin, [clip], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('testcam printed no URL within 60 s')), 60_000);
    proc.once('error', reject);
    lines({ input: proc.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ proc, url: line.trim() });
    });
  });
}

/** Call `fn` until it returns { done: true, value }; its value, or an error after `timeoutMs`. */
export async function poll(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last.done) return last.value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: gave up after ${timeoutMs} ms (last: ${JSON.stringify(last.value)})`);
}

/**
 * A JSON call from the page, with its cookie; writes carry the CSRF token of their route (as
 * the UI sends it). Resolves with { status, body (parsed JSON or null), text }.
 */
export const call = (page, method, path, body) => page.evaluate(async ({ method, path, body }) => {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && !path.startsWith('/api/v1/auth/')) {
    const route = path.replace(/^\/api\/v1/, '').split('?')[0].replace(/\/\d+(?=\/|$)/g, '/{id}');
    const t = await fetch(`/api/v1/auth/csrf?route=${encodeURIComponent(route)}`);
    headers['X-CSRF-Token'] = (await t.json()).token;
  }
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body: json, text };
}, { method, path, body });
