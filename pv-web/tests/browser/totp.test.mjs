// Headless-Chromium test of the TOTP route: first sign-in with the setup code, choose a
// password and enrol an authenticator app (codes computed here, RFC 6238), recovery codes, sign
// out, then sign in with password + a fresh code. A replayed code is refused.
//
// Run:  npm install && PV_BIN=/path/to/target/debug/pentavision npm test
// Env:  see harness.mjs.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  TEST_TIMEOUT_MS, GREEN, BLACK, startServer, stopServer, launchBrowser, cleanupAll, newPage,
  expectPath, waitToast, passwordSignIn, apiLogin, totpCode, totpStep, hotp, base32Decode,
} from './harness.mjs';

after(cleanupAll, { timeout: 30_000 });

const PASSWORD = 'correct horse battery staple';

test('the TOTP helper matches RFC 6238 appendix B (SHA-1, last six digits)', () => {
  // The RFC's key is ASCII "12345678901234567890".
  const key = base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  assert.equal(key.toString('latin1'), '12345678901234567890');
  const at = (seconds) => hotp(key, Math.floor(seconds / 30), 6);
  assert.equal(at(59), '287082');
  assert.equal(at(1111111109), '081804');
  assert.equal(at(1111111111), '050471');
  assert.equal(at(1234567890), '005924');
  assert.equal(at(2000000000), '279037');
  assert.equal(at(20000000000), '353130');
  assert.equal(totpCode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 1), '287082');
});

const isShown = (locator) => locator.evaluate((el) => !el.hidden && el.getClientRects().length > 0
  && getComputedStyle(el).display !== 'none' && getComputedStyle(el).visibility !== 'hidden');

const getJson = (page, path) => page.evaluate(async (p) => {
  const r = await fetch(p, { headers: { Accept: 'application/json' } });
  return { status: r.status, body: await r.json().catch(() => null) };
}, path);

test('TOTP: setup code → password + authenticator app → recovery codes → sign out → password + fresh code',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const server = await startServer();
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
    });
    t.diagnostic(`server at ${server.url}, browser at ${server.base}`);

    browser = await launchBrowser();
    const { page, problems } = await newPage(browser);

    await page.goto(`${server.base}/login`, { waitUntil: 'load' });
    assert.equal(await isShown(page.locator('#code-row')), false, 'the code field is hidden at first');
    await passwordSignIn(page, 'Thalia', server.setupCode);
    await expectPath(page, '/enrol', 'signing in with the setup code');

    // --- Step 1 of the wizard: choose a password (Thalia has none), typed twice; the
    // authenticator app card never asks for it.
    const newPassword = page.locator('#new-password');
    assert.equal(await isShown(newPassword), true, 'an account without a password is asked for one');
    assert.equal(await isShown(page.locator('#step-factor')), false, 'the second factor comes after the password');
    await newPassword.fill(PASSWORD);
    await page.locator('#new-password-again').fill(PASSWORD);
    await page.locator('#password-form button[type=submit]').click();
    await page.locator('#step-factor').waitFor({ state: 'visible' });
    assert.equal(await isShown(newPassword), false, 'the password step is done');

    // --- Step 2: the QR code and the secret.
    assert.equal(await isShown(page.locator('#totp-qr')), false, 'no QR code before asking for one');
    await page.locator('[data-action=totp-start]').click();
    const secretText = page.locator('#totp-secret');
    await secretText.waitFor({ state: 'visible' });
    const m = /^Or enter this key: ([A-Z2-7]+=*)$/.exec((await secretText.textContent()).trim());
    assert.ok(m, `#totp-secret shows a base32 key: ${JSON.stringify(await secretText.textContent())}`);
    const secret = m[1];
    assert.ok(base32Decode(secret).length >= 16, 'the secret has at least 128 bits');

    const qr = page.locator('#totp-qr img');
    await qr.waitFor({ state: 'visible' });
    await page.waitForFunction(() => document.querySelector('#totp-qr img')?.complete);
    const qrSize = await qr.evaluate((img) => ({ w: img.naturalWidth, h: img.naturalHeight }));
    assert.ok(qrSize.w >= 100 && qrSize.h >= 100, `the QR code image loads (${JSON.stringify(qrSize)})`);
    if (process.env.PV_ARTIFACTS) {
      await page.screenshot({ path: `${process.env.PV_ARTIFACTS}/totp-enrol-qr.png`, fullPage: true });
    }

    // --- Confirm with the current code: ten recovery codes.
    const confirmStep = totpStep();
    const confirmCode = totpCode(secret, confirmStep);
    await page.locator('#totp-code').fill(confirmCode);
    await page.locator('#totp-form button[type=submit]').click();
    const recovery = page.locator('#step-codes');
    await recovery.waitFor({ state: 'visible' });
    const codes = await page.locator('#recovery-list li').allTextContents();
    assert.equal(codes.length, 10, `ten recovery codes: ${JSON.stringify(codes)}`);
    for (const c of codes) assert.match(c, /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/, 'recovery code format');
    assert.equal(new Set(codes).size, 10, 'the recovery codes differ');
    const enrolled = await waitToast(page, 'Authenticator app enrolled.');
    assert.deepEqual(await enrolled.evaluate((el) => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]),
      [GREEN, BLACK], 'the enrolment toast is green with black text');
    assert.equal(await isShown(page.locator('#totp-form')), false, 'the enrolment form is hidden once confirmed');

    // --- The setup code is retired.
    const retired = await apiLogin(server, { username: 'Thalia', password: server.setupCode });
    assert.equal(retired.status, 401, `the setup code no longer signs in: ${await retired.text()}`);
    assert.ok(!existsSync(server.setupCodeFile), 'setup-code.txt is gone after the enrolment');

    // --- "I have saved them", then on to the overview, a full session.
    assert.equal(await page.locator('#enrol-finish').isDisabled(), true, 'Finish waits for the confirmation');
    await page.locator('#codes-saved').check();
    await page.locator('#enrol-finish').click();
    await expectPath(page, '/', 'Continue after the recovery codes');
    await page.locator('h1', { hasText: 'System overview' }).waitFor();
    assert.equal((await page.locator('.topbar .user').textContent()).trim(), 'Thalia', 'the top bar names the signed-in user');
    const me = await getJson(page, '/api/v1/auth/me');
    assert.equal(me.body?.stage, 'full', 'the session became a full one');
    assert.equal(me.body?.totp, true, 'TOTP is enrolled');

    // --- Sign out, then the password alone makes the code field appear in place (no error).
    await page.locator('.topbar .user').click();
    await page.locator('.topbar [data-action=logout]').click();
    await expectPath(page, '/login', 'after signing out');
    await passwordSignIn(page, 'Thalia', PASSWORD);
    await page.locator('#code').waitFor({ state: 'visible' });
    assert.equal(await isShown(page.locator('#code-row')), true, 'the code field appears');
    assert.equal(await page.locator('#toasts .toast').count(), 0, 'asking for the code is no error toast');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'code', 'the code field has the focus');
    assert.equal(new URL(page.url()).pathname, '/login', 'still on /login without a code');

    // --- The code used for the confirmation is spent (its step is taken).
    await page.locator('#code').fill(confirmCode);
    await page.locator('#login-form button[type=submit]').click();
    const wrong = await waitToast(page, 'Wrong user name, password or code.');
    assert.equal(await wrong.evaluate((el) => getComputedStyle(el).backgroundColor), GREEN, 'error toasts are green too');
    assert.equal(new URL(page.url()).pathname, '/login', 'a replayed code does not sign in');

    // --- A fresh code (a later step than the confirmation's; the server allows ±1 step).
    const step = Math.max(totpStep(), confirmStep + 1);
    await page.locator('#code').fill(totpCode(secret, step));
    await page.locator('#login-form button[type=submit]').click();
    await expectPath(page, '/', 'signing in with password + a fresh code');
    await page.locator('h1', { hasText: 'System overview' }).waitFor();
    assert.equal((await page.locator('.topbar .user').textContent()).trim(), 'Thalia', 'signed in as Thalia');
    assert.equal((await getJson(page, '/api/v1/auth/me')).body?.stage, 'full', 'password + code is a full session');

    assert.deepEqual(await page.evaluate(() => window.__pv.csp), [], 'no CSP violations');
    // The refused sign-ins (no code, replayed code) log their 401s; nothing else may.
    const expected401 = /Failed to load resource: the server responded with a status of 401 .*\/api\/v1\/auth\/login\)$/;
    assert.deepEqual(problems([expected401]), [], 'no console errors or page errors besides the refused sign-ins');
  });
