// The first hour, as a new owner lives it: open `http://127.0.0.1:PORT/cameras` exactly as the
// README says, land on the sign-in page on localhost (where passkeys work), sign in with the
// setup code, go through the enrolment wizard (password typed twice, a passkey from a Chromium
// virtual authenticator, recovery codes copied, downloaded, printed and confirmed) and end on
// /cameras, the page first asked for; a lost passkey is replaced by password + recovery code.
// Then the security page from the user menu (tokens, passkeys, sessions, recovery codes),
// signing out, the code field appearing in place, and `?next=` refusing other origins. Screenshots of every step, desktop and 390 px wide.
//
// Run:  npm install && PV_BIN=/path/to/target/debug/pentavision node --test firstrun.test.mjs
// Env:  see harness.mjs (PV_ARTIFACTS — where the screenshots go; default /tmp/shots).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import {
  TEST_TIMEOUT_MS, VIEWPORT, startServer, stopServer, launchBrowser, cleanupAll, newPage, expectPath,
  waitToast, passwordSignIn, apiLogin, totpCode, totpStep, poll,
} from './harness.mjs';

after(cleanupAll, { timeout: 30_000 });

const PASSWORD = 'violet kettle marching north';
const PHONE = { width: 390, height: 844 };
const SHOTS = process.env.PV_ARTIFACTS || '/tmp/shots';

const isShown = (locator) => locator.evaluate((el) => !el.hidden && el.getClientRects().length > 0
  && getComputedStyle(el).display !== 'none' && getComputedStyle(el).visibility !== 'hidden');

/** Screenshots of the page as it is now, desktop and phone width; the phone one also checks
 * that nothing scrolls sideways. */
async function shoot(t, page, name) {
  await mkdir(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  const desktop = join(SHOTS, `firstrun-${name}-desktop.png`);
  await page.screenshot({ path: desktop, fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(100);
  const phone = join(SHOTS, `firstrun-${name}-390.png`);
  await page.screenshot({ path: phone, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewportSize(VIEWPORT);
  t.diagnostic(`screenshots: ${desktop}, ${phone}`);
  assert.ok(overflow <= 0, `${name}: no sideways scrolling at 390 px (overflow ${overflow} px)`);
}

/** A GET from Node with a chosen Host header (what a browser on another address sends). */
function rawGet(server, path, headers) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('first sign-in on http://127.0.0.1:PORT/cameras: localhost, enrolment wizard with a passkey, recovery codes saved, back on /cameras',
  { timeout: TEST_TIMEOUT_MS * 2 }, async (t) => {
    const server = await startServer();
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
    });
    const readme = `http://127.0.0.1:${server.port}`;
    const localhost = `http://localhost:${server.port}`;

    // --- The banner names the localhost address.
    const banner = server.output.find((l) => /is running at/.test(l)) || '';
    assert.ok(banner.includes(`is running at ${localhost}/`), `the banner shows the localhost URL: ${banner}`);

    // --- API clients and non-browsers on 127.0.0.1 are left alone.
    const api = await rawGet(server, '/api/v1/system', { Host: `127.0.0.1:${server.port}`, Accept: 'text/html' });
    assert.notEqual(api.status, 307, 'API requests are never redirected');
    const curl = await rawGet(server, '/cameras', { Host: `127.0.0.1:${server.port}`, Accept: '*/*' });
    assert.notEqual(curl.status, 307, 'a client that does not ask for HTML is not redirected');
    const other = await rawGet(server, '/login', { Host: `192.0.2.10:${server.port}`, Accept: 'text/html' });
    assert.equal(other.status, 200, 'another IP address gets the sign-in page');
    assert.match(other.body, /Passkeys need a host name/, 'on an IP address the page says passkeys need a host name');
    assert.doesNotMatch(other.body, /data-action="passkey-login"/, 'and offers no passkey button');

    browser = await launchBrowser();
    const { context, page, problems } = await newPage(browser);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: localhost });

    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true,
      },
    });

    // --- Open the README's address: sent to localhost, then to the sign-in page with next.
    const response = await page.goto(`${readme}/cameras`, { waitUntil: 'load' });
    const landed = new URL(page.url());
    assert.equal(landed.origin, localhost, 'the browser ends on localhost');
    assert.equal(landed.pathname, '/login', 'anonymous: the sign-in page');
    assert.equal(landed.searchParams.get('next'), '/cameras', 'the sign-in page knows where to return');
    assert.equal(response.status(), 200);
    const chain = [];
    for (let r = response.request().redirectedFrom(); r; r = r.redirectedFrom()) chain.unshift(r);
    assert.equal(chain[0].url(), `${readme}/cameras`, 'the first request was the README address');
    assert.equal((await chain[0].response()).status(), 307, '127.0.0.1 answers 307 to localhost');
    assert.equal((await chain[0].response()).headers().location, `${localhost}/cameras`, 'same path on localhost');

    await page.locator('[data-action=passkey-login]').waitFor();
    assert.equal(await isShown(page.locator('#first-start')), true, 'before set-up the page explains the setup code');
    assert.equal(await isShown(page.locator('#code-row')), false, 'no code field yet');
    await shoot(t, page, '0-login');

    // --- The setup code: the enrolment wizard, navigation hidden.
    await passwordSignIn(page, 'Thalia', server.setupCode);
    await expectPath(page, '/enrol', 'signing in with the setup code');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/cameras', 'the wizard keeps next');
    assert.equal(await page.locator('.topbar .nav a').count(), 0, 'no main navigation during enrolment');
    assert.equal(await page.locator('.topbar .user-menu').count(), 0, 'no user menu during enrolment');

    // Step 1: the password, twice, strength shown.
    assert.equal(await isShown(page.locator('#step-password')), true, 'step 1 first');
    assert.equal(await isShown(page.locator('#step-factor')), false, 'step 2 not yet');
    await page.locator('#new-password').fill('short');
    assert.match(await page.locator('#strength-text').textContent(), /too short/);
    await page.locator('#new-password').fill('aaaaaaaaaa');
    assert.match(await page.locator('#strength-text').textContent(), /weak/);
    await page.locator('#new-password').fill(PASSWORD);
    assert.match(await page.locator('#strength-text').textContent(), /strong/);
    await page.locator('#new-password-again').fill(PASSWORD + 'x');
    assert.match(await page.locator('#match-text').textContent(), /differ/);
    await shoot(t, page, '1-password');
    await page.locator('#password-form button[type=submit]').click();
    await waitToast(page, 'The two passwords differ');
    assert.equal(await isShown(page.locator('#step-password')), true, 'a mismatch stays on step 1');
    await page.locator('#new-password-again').fill(PASSWORD);
    assert.match(await page.locator('#match-text').textContent(), /match/);
    await page.locator('#password-form button[type=submit]').click();

    // Step 2: a passkey.
    await page.locator('#step-factor').waitFor({ state: 'visible' });
    assert.equal(await isShown(page.locator('#step-password')), false, 'step 1 is done');
    assert.match(await page.locator('.wizard-steps li.done').first().textContent(), /Password/);
    await shoot(t, page, '2-factor');
    await page.locator('#passkey-name').fill('Virtual authenticator');
    await page.locator('[data-action=passkey-register]').click();

    // Step 3: recovery codes; Finish needs the tick.
    await page.locator('#step-codes').waitFor({ state: 'visible' });
    const codes = await page.locator('#recovery-list li').allTextContents();
    assert.equal(codes.length, 10, `ten recovery codes: ${JSON.stringify(codes)}`);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1, 'the authenticator holds the new passkey');
    assert.equal(credentials[0].rpId, 'localhost', 'bound to localhost');
    assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential');
    assert.equal(await page.locator('#enrol-finish').isDisabled(), true, 'Finish waits for "I have saved them"');
    await shoot(t, page, '3-codes');

    await page.locator('[data-action=codes-copy]').click();
    await waitToast(page, 'Recovery codes copied.');
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    for (const c of codes) assert.ok(clip.includes(c), `the copied text has ${c}`);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('[data-action=codes-download]').click(),
    ]);
    assert.equal(download.suggestedFilename(), 'pentavision-recovery-codes.txt');
    const file = await readFile(await download.path(), 'utf8');
    for (const c of codes) assert.ok(file.includes(c), `the downloaded file has ${c}`);

    await page.evaluate(() => {
      window.__printed = [];
      window.print = () => window.__printed.push(document.body.classList.contains('printing-codes'));
    });
    await page.locator('[data-action=codes-print]').click();
    assert.deepEqual(await page.evaluate(() => window.__printed), [true], 'Print prints the codes alone');

    await page.locator('#codes-saved').check();
    assert.equal(await page.locator('#enrol-finish').isDisabled(), false);
    await page.locator('#enrol-finish').click();

    // --- The page first asked for, a full session, the navigation back.
    await expectPath(page, '/cameras', 'finishing the wizard');
    assert.equal(new URL(page.url()).origin, localhost);
    await page.locator('.topbar .nav a', { hasText: 'Cameras' }).waitFor();
    assert.equal((await page.locator('.topbar .user').textContent()).trim(), 'Thalia');
    await shoot(t, page, '4-cameras');

    // --- Set-up is done: the sign-in page no longer talks about the administrator.
    const login = await rawGet(server, '/login', { Host: `localhost:${server.port}`, Accept: 'text/html' });
    assert.doesNotMatch(login.body, /Thalia|setup code/, 'after set-up the sign-in page names no administrator');

    // --- A lost passkey: password + a recovery code, the code field appearing in place.
    await page.locator('.topbar .user').click();
    await page.locator('.topbar [data-action=logout]').click();
    await expectPath(page, '/login', 'signing out');
    await page.locator('#signed-out', { hasText: 'You are signed out.' }).waitFor();
    await passwordSignIn(page, 'Thalia', PASSWORD);
    await page.locator('#code').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#code-label').textContent(), 'Recovery code', 'a passkey account is asked for a recovery code');
    assert.equal(await page.locator('#toasts .toast').count(), 0, 'asking for it is no error');
    await page.locator('#code').fill(codes[0]);
    await page.locator('#login-form button[type=submit]').click();
    await expectPath(page, '/', 'password + recovery code');
    assert.equal((await page.locator('.topbar .user').textContent()).trim(), 'Thalia');

    assert.deepEqual(await page.evaluate(() => window.__pv.csp), [], 'no CSP violations');
    const expected401 = /Failed to load resource: the server responded with a status of 401 .*\/api\/v1\/auth\/login\)$/;
    assert.deepEqual(problems([expected401]), [], 'no console errors or page errors');
  });

/** A full session for Thalia over the API: setup code → password → authenticator app. */
async function fullSession(server) {
  const login = await apiLogin(server, { username: 'Thalia', password: server.setupCode });
  assert.equal(login.status, 200, 'setup-code sign-in');
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const post = async (path, body) => {
    const r = await fetch(new URL(path, server.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', Cookie: cookie },
      body: JSON.stringify(body || {}),
    });
    assert.ok(r.ok, `${path}: ${r.status} ${await r.clone().text()}`);
    const text = await r.text();
    return text ? JSON.parse(text) : {};
  };
  await post('/api/v1/auth/password', { new_password: PASSWORD });
  const { secret } = await post('/api/v1/auth/totp/start');
  const step = totpStep();
  const { recovery_codes: recovery } = await post('/api/v1/auth/totp/confirm', { code: totpCode(secret, step) });
  const [name, value] = cookie.split('=');
  return { name, value, secret, step, recovery };
}

test('security page from the user menu; signing out says so; the code field appears in place; next stays on this site',
  { timeout: TEST_TIMEOUT_MS * 2 }, async (t) => {
    const server = await startServer();
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
    });
    const session = await fullSession(server);
    browser = await launchBrowser();
    const { context, page, problems } = await newPage(browser);
    await context.addCookies([{ name: session.name, value: session.value, url: server.base }]);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
    let promptAnswer = '';
    page.on('dialog', (d) => d.accept(d.type() === 'prompt' ? promptAnswer : undefined));
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true,
      },
    });

    // --- The user menu leads to the security page.
    await page.goto(`${server.base}/`, { waitUntil: 'load' });
    await page.locator('.topbar .user').click();
    await page.locator('.user-menu-items a', { hasText: 'Security' }).click();
    await expectPath(page, '/account/security', 'the user menu\'s Security item');
    await page.locator('#totp-status', { hasText: 'An authenticator app is set up' }).waitFor();
    await page.locator('#session-rows tr', { hasText: 'this browser' }).waitFor();

    // Sessions: another one (password + a recovery code, from elsewhere) is listed and can be
    // signed out from here.
    const elsewhere = await apiLogin(server, { username: 'Thalia', password: PASSWORD, code: session.recovery[0] });
    assert.equal(elsewhere.status, 200, 'a second session');
    const elsewhereCookie = elsewhere.headers.get('set-cookie').split(';')[0];
    await page.reload({ waitUntil: 'load' });
    await page.locator('#session-rows tr', { hasText: 'this browser' }).waitFor();
    assert.equal(await page.locator('#session-rows tr').count(), 2, 'two sessions listed');
    await page.locator('#session-rows tr', { hasNotText: 'this browser' }).locator('button', { hasText: 'Sign out' }).click();
    await waitToast(page, 'That session is signed out.');
    await poll('the other session disappears', async () => {
      const n = await page.locator('#session-rows tr').count();
      return { done: n === 1, value: n };
    }, 5_000);
    const gone = await fetch(new URL('/api/v1/auth/me', server.url), { headers: { Cookie: elsewhereCookie } });
    assert.equal(gone.status, 401, 'the signed-out session no longer works');

    // Passkeys: add, rename, remove.
    await page.locator('#passkey-rows', { hasText: 'No passkeys yet.' }).waitFor();
    await page.locator('#passkey-name').fill('Laptop');
    await page.locator('#passkey-form button[type=submit]').click();
    await waitToast(page, 'Passkey added.');
    await page.locator('#passkey-rows tr', { hasText: 'Laptop' }).waitFor();
    promptAnswer = 'Work laptop';
    await page.locator('#passkey-rows tr', { hasText: 'Laptop' }).locator('button', { hasText: 'Rename' }).click();
    await page.locator('#passkey-rows tr', { hasText: 'Work laptop' }).waitFor();

    // API tokens: created, shown once, listed, usable, revoked.
    await page.locator('#token-name').fill('Home Assistant');
    await page.locator('#token-form button[type=submit]').click();
    await page.locator('#token-secret-box').waitFor({ state: 'visible' });
    const secret = (await page.locator('#token-secret').textContent()).trim();
    assert.match(secret, /^pvt_/, 'the token is shown');
    await page.locator('[data-action=token-copy]').click();
    await waitToast(page, 'Token copied.');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    await page.locator('#token-rows tr', { hasText: 'Home Assistant' }).waitFor();
    const withToken = await fetch(new URL('/api/v1/auth/me', server.url), { headers: { Authorization: `Bearer ${secret}` } });
    assert.equal(withToken.status, 200, 'the new token works');
    await shoot(t, page, '5-security');
    await page.locator('[data-action=token-done]').click();
    assert.equal(await isShown(page.locator('#token-secret-box')), false, 'Done hides the token for good');
    await page.locator('#token-rows tr', { hasText: 'Home Assistant' }).locator('button', { hasText: 'Revoke' }).click();
    await page.locator('#token-rows', { hasText: 'No API tokens.' }).waitFor();
    const revoked = await fetch(new URL('/api/v1/auth/me', server.url), { headers: { Authorization: `Bearer ${secret}` } });
    assert.equal(revoked.status, 401, 'a revoked token stops working');

    // New recovery codes.
    await page.locator('[data-action=codes-renew]').click();
    await page.locator('#codes-panel').waitFor({ state: 'visible' });
    const codes = await page.locator('#codes-panel #recovery-list li').allTextContents();
    assert.equal(codes.length, 10, 'ten new recovery codes');
    await page.locator('[data-action=codes-done]').click();

    // Remove the passkey again.
    await page.locator('#passkey-rows tr', { hasText: 'Work laptop' }).locator('button', { hasText: 'Remove' }).click();
    await page.locator('#passkey-rows', { hasText: 'No passkeys yet.' }).waitFor();

    // --- Sign out from the user menu: the sign-in page says so.
    await page.locator('.topbar .user').click();
    await page.locator('.user-menu-items [data-action=logout]').click();
    await expectPath(page, '/login', 'signing out');
    await page.locator('#signed-out', { hasText: 'You are signed out.' }).waitFor();
    assert.equal(await page.locator('#first-start').count(), 0, 'set-up is done: no word of the administrator');

    // --- ?next= on another origin is ignored; the code field appears in place, no error.
    await page.goto(`${server.base}/login?next=//evil.example/x`, { waitUntil: 'load' });
    await passwordSignIn(page, 'Thalia', PASSWORD);
    await page.locator('#code').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#toasts .toast').count(), 0, 'asking for the code is no error');
    assert.match(await page.locator('#code-label').textContent(), /authenticator app/);
    await shoot(t, page, '7-login-code');
    await page.locator('#code').fill(totpCode(session.secret, Math.max(totpStep(), session.step + 1)));
    await page.locator('#login-form button[type=submit]').click();
    await expectPath(page, '/', 'next=//evil.example is ignored');
    assert.equal(new URL(page.url()).origin, server.base, 'still on this site');
    const live = (await context.cookies(server.base)).find((c) => c.name === session.name);
    const guarded = await rawGet(server, '/login?next=%2F%5Cevil.example', {
      Host: `localhost:${server.port}`, Accept: 'text/html', Cookie: `${live.name}=${live.value}`,
    });
    assert.equal(guarded.status, 303);
    assert.equal(guarded.headers.location, '/', 'a signed-in visit to /login?next=/\\evil.example goes home');

    // --- How the sign-in page looks on another IP address (rendered here on localhost: the
    // browser cannot send another Host header).
    const onIp = await rawGet(server, '/login', { Host: `192.0.2.10:${server.port}`, Accept: 'text/html' });
    await page.goto(`${server.base}/login`, { waitUntil: 'load' });
    await page.setContent(onIp.body, { waitUntil: 'load' });
    await page.locator('#passkey-note').waitFor();
    await shoot(t, page, '8-login-ip-address');
    await page.goto(`${server.base}/`, { waitUntil: 'load' });

    // --- The user menu at 390 px.
    await page.setViewportSize(PHONE);
    await page.locator('.topbar .user').click();
    await page.locator('.user-menu-items a', { hasText: 'Security' }).waitFor({ state: 'visible' });
    await page.screenshot({ path: join(SHOTS, 'firstrun-6-user-menu-390.png') });
    await page.setViewportSize(VIEWPORT);

    assert.deepEqual(await page.evaluate(() => window.__pv.csp), [], 'no CSP violations');
    const expected401 = /Failed to load resource: the server responded with a status of 401 .*\/api\/v1\/auth\/login\)$/;
    assert.deepEqual(problems([expected401]), [], 'no console errors besides the code request');
  });
