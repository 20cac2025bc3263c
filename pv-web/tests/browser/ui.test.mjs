// Headless-Chromium test of the PentaVision admin UI: first sign-in with the setup code, passkey
// enrolment (a CDP virtual authenticator), the system overview page and its toasts, sign-out,
// and passkey sign-in. The TOTP route is in totp.test.mjs.
//
// Run:  npm install && PV_BIN=/path/to/target/debug/pentavision npm test
// Env:  see harness.mjs (PV_BIN, CHROMIUM, PV_ARTIFACTS — a screenshot ui-overview.png).
//
// Each test starts its own server on a fresh temporary data dir and a free loopback port, and
// always stops it and removes the data dir afterwards, also when an assertion fails or the test
// times out.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  TEST_TIMEOUT_MS, VIEWPORT, GREEN, BLACK, startServer, stopServer, launchBrowser, cleanupAll,
  newPage, expectPath, passwordSignIn, apiLogin,
} from './harness.mjs';

// The toast component: visible for 10 s, then `toast--fading`, then removed ~0.7 s later.
const TOAST_VISIBLE_MS = 10_000;

after(cleanupAll, { timeout: 30_000 });

const toastEvents = (page) => page.evaluate(() => window.__pv.toastEvents);
const eventTime = (events, kind, text) => events.find((e) => e.kind === kind && e.text.includes(text))?.t;

/** The overview page (just loaded): title, initial toast look/placement/lifetime, refresh toast. */
async function checkOverview(t, page) {
  assert.match(await page.title(), /PentaVision/, 'page title names PentaVision');
  await page.locator('h1', { hasText: 'System overview' }).waitFor();

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

  const csp = await page.evaluate(() => window.__pv.csp);
  assert.deepEqual(csp, [], 'no CSP violations on the overview page');
}

const getJson = (page, path) => page.evaluate(async (p) => {
  const r = await fetch(p, { headers: { Accept: 'application/json' } });
  return { status: r.status, body: await r.json().catch(() => null) };
}, path);

test('passkey: setup code → enrol a passkey → overview and its toasts → sign out → passkey sign-in; setup code retired',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const server = await startServer();
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
    });
    t.diagnostic(`server at ${server.url}, browser at ${server.base}, setup code ${server.setupCode}`);

    await t.test('the printed first-login URL names the bound port', () => assert.ok(server.loginLine.includes(`${server.base}/login`), `printed: ${server.loginLine}`));

    assert.ok(existsSync(server.setupCodeFile), 'a fresh server writes setup-code.txt');

    browser = await launchBrowser();
    const { context, page, problems } = await newPage(browser);

    // --- Anonymous: / sends to /login.
    const response = await page.goto(`${server.base}/`, { waitUntil: 'load' });
    assert.equal(new URL(page.url()).pathname, '/login', 'anonymous / redirects to /login');
    assert.equal(response.status(), 200, 'the sign-in page answers 200');
    const redirect = response.request().redirectedFrom();
    assert.ok(redirect, 'the browser was redirected to /login');
    assert.equal((await redirect.response()).status(), 303, '/ answers 303 See Other to an anonymous browser');
    assert.match(await page.title(), /Sign in · PentaVision/);
    assert.equal(await page.locator('.topbar .user').count(), 0, 'no user in the top bar before sign-in');

    // --- A platform authenticator with user verification, answering on its own.
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;

    // --- The setup code gives an enrolment session.
    await passwordSignIn(page, 'Thalia', server.setupCode);
    await expectPath(page, '/enrol', 'signing in with the setup code');
    await page.locator('h1', { hasText: 'Secure your account' }).waitFor();
    assert.equal(await getJson(page, '/api/v1/auth/me').then((r) => r.body?.stage), 'enrol', 'the session is an enrolment one');

    // --- Choose a password (the wizard's first step), then register a passkey: toast, the
    // recovery codes, then the overview.
    await page.locator('#new-password').fill('correct horse battery staple');
    await page.locator('#new-password-again').fill('correct horse battery staple');
    await page.locator('#password-form button[type=submit]').click();
    await page.locator('#passkey-name').fill('Headless Chromium');
    const created = page.locator('#toasts .toast', { hasText: 'Passkey created.' });
    await Promise.all([
      created.waitFor({ state: 'visible' }),
      page.locator('[data-action=passkey-register]').click(),
    ]);
    assert.equal(await created.evaluate((el) => getComputedStyle(el).backgroundColor), GREEN, '"Passkey created." toast is green');
    await page.locator('#step-codes').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#recovery-list li').count(), 10, 'ten recovery codes after the passkey');
    await page.locator('#codes-saved').check();
    await page.locator('#enrol-finish').click();
    await expectPath(page, '/', 'after registering a passkey');

    const creds = await credentials();
    assert.equal(creds.length, 1, 'the authenticator holds one credential');
    assert.equal(creds[0].isResidentCredential, true, 'the passkey is a resident (discoverable) credential');
    assert.equal(creds[0].rpId, 'localhost', 'the passkey is bound to localhost');
    const signCountAfterRegistration = creds[0].signCount;

    assert.equal((await page.locator('.topbar .user').textContent()).trim(), 'Thalia', 'the top bar names the signed-in user');
    await checkOverview(t, page);

    const me = await getJson(page, '/api/v1/auth/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.stage, 'full', 'the session became a full one');
    assert.equal(me.body.passkeys, 1, 'one passkey registered');
    const passkeys = await getJson(page, '/api/v1/auth/passkeys');
    assert.deepEqual(passkeys.body.map((p) => p.name), ['Headless Chromium'], 'the passkey has the name given');

    // --- The setup code is retired.
    const retired = await apiLogin(server, { username: 'Thalia', password: server.setupCode });
    assert.equal(retired.status, 401, `the setup code no longer signs in: ${await retired.text()}`);
    assert.ok(!existsSync(server.setupCodeFile), 'setup-code.txt is gone after the enrolment');

    // --- Sign out (from the user menu): the sign-in page says so.
    await page.locator('.topbar .user').click();
    await page.locator('.topbar [data-action=logout]').click();
    await expectPath(page, '/login', 'after signing out');
    await page.locator('#signed-out', { hasText: 'You are signed out.' }).waitFor();
    assert.equal((await getJson(page, '/api/v1/auth/me')).status, 401, 'signed out: /auth/me answers 401');
    const probe401 = /Failed to load resource: the server responded with a status of 401 .*\/api\/v1\/auth\/me\)$/;
    await page.goto(`${server.base}/`, { waitUntil: 'load' });
    assert.equal(new URL(page.url()).pathname, '/login', 'signed out: / redirects to /login again');

    // --- Sign in with the passkey (discoverable: no user name).
    await page.locator('[data-action=passkey-login]').click();
    await expectPath(page, '/', 'signing in with the passkey');
    await page.locator('h1', { hasText: 'System overview' }).waitFor();
    assert.equal((await page.locator('.topbar .user').textContent()).trim(), 'Thalia', 'signed in as Thalia');
    assert.equal((await getJson(page, '/api/v1/auth/me')).body.stage, 'full', 'a passkey sign-in is a full session');
    const [after] = await credentials();
    assert.ok(after.signCount > signCountAfterRegistration,
      `the authenticator signed an assertion (sign count ${signCountAfterRegistration} → ${after.signCount})`);

    assert.deepEqual(await page.evaluate(() => window.__pv.csp), [], 'no CSP violations');
    // Only the 401 of the signed-out /auth/me probe above may be logged.
    assert.deepEqual(problems([probe401]), [], 'no console errors or page errors');
  });
