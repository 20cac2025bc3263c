// Headless-Chromium test of the administration pages: Block / Allow (add a block, remove it,
// "Exempt this IP" — every change carrying the page's CSRF token) and the audit log (the
// changes listed, filtered, the CSV link following the filter). No CSP violation, no console
// error.
//
// Run:  npm install && PV_BIN=/path/to/target/debug/pentavision node --test admin.test.mjs
// Env:  see harness.mjs.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  TEST_TIMEOUT_MS, startServer, stopServer, launchBrowser, cleanupAll, newPage, waitToast,
  apiLogin, totpCode, totpStep,
} from './harness.mjs';

after(cleanupAll, { timeout: 30_000 });

/** A full session for Thalia, made over the API: setup code → password → TOTP enrolment. */
async function fullSession(server) {
  const login = await apiLogin(server, { username: 'Thalia', password: server.setupCode });
  assert.equal(login.status, 200, 'setup-code sign-in');
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const call = async (path, body) => {
    const r = await fetch(new URL(path, server.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', Cookie: cookie },
      body: JSON.stringify(body || {}),
    });
    assert.ok(r.ok, `${path}: ${r.status} ${await r.clone().text()}`);
    const text = await r.text();
    return text ? JSON.parse(text) : {};
  };
  await call('/api/v1/auth/password', { new_password: 'correct horse battery staple' });
  const { secret } = await call('/api/v1/auth/totp/start');
  await call('/api/v1/auth/totp/confirm', { code: totpCode(secret, totpStep()) });
  return cookie.split('=');
}

test('Block / Allow and the audit log work in the browser with the page\'s CSRF tokens',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const server = await startServer();
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
    });
    t.diagnostic(`server at ${server.url}`);
    const [name, value] = await fullSession(server);

    browser = await launchBrowser();
    const { context, page, problems } = await newPage(browser);
    await context.addCookies([{ name, value, url: server.base }]);

    // --- Block / Allow: the list, then add a block with the form.
    await page.goto(`${server.base}/ip-rules`, { waitUntil: 'load' });
    await page.locator('h1', { hasText: 'Block / Allow' }).waitFor();
    await page.locator('#rule-rows tr[data-network="10.0.0.0/8"]').waitFor();
    await page.locator('#rule-network').fill('203.0.113.77');
    await page.locator('#rule-reason').fill('browser test');
    await page.locator('#rule-form button[type=submit]').click();
    await waitToast(page, 'Blocked 203.0.113.77.');
    const row = page.locator('#rule-rows tr[data-network="203.0.113.77"][data-action="block"]');
    await row.waitFor();
    assert.match(await row.textContent(), /browser test/);

    // Remove it again (only that rule).
    await row.locator('button', { hasText: 'Remove' }).click();
    await waitToast(page, 'Removed the block rule for 203.0.113.77.');
    await row.waitFor({ state: 'detached' });

    // "Exempt this IP": the browser's own address.
    await page.locator('[data-action=exempt-me]').click();
    await waitToast(page, 'is exempt.');
    await page.locator('#rule-rows tr[data-network="127.0.0.1"][data-action="exempt"]').waitFor();

    // A change without the page's token is refused (the token is what lets the page through).
    const bare = await page.evaluate(async () => {
      const r = await fetch('/api/v1/security/ip-rules', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ network: '203.0.113.78', action: 'block' }),
      });
      return { status: r.status, body: await r.json() };
    });
    assert.equal(bare.status, 403);
    assert.match(bare.body.detail, /X-CSRF-Token/);

    // --- The audit log lists those changes; the filter narrows it and the CSV link follows.
    await page.goto(`${server.base}/audit`, { waitUntil: 'load' });
    await page.locator('h1', { hasText: 'Audit log' }).waitFor();
    await page.locator('#audit-rows tr', { hasText: 'ip.block' }).first().waitFor();
    await page.locator('#audit-action').fill('ip.remove');
    await page.locator('#audit-filter button[type=submit]').click();
    await waitToast(page, '1 event shown.');
    const rows = await page.locator('#audit-rows tr').allTextContents();
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.match(rows[0], /ip\.remove/);
    assert.match(rows[0], /203\.0\.113\.77/);
    const csv = await page.locator('#audit-csv').getAttribute('href');
    assert.equal(csv, '/api/v1/audit/events.csv?action=ip.remove');
    const text = await page.evaluate(async (href) => (await fetch(href)).text(), csv);
    assert.match(text, /^id,occurred_at,actor,action,/);
    assert.match(text, /ip\.remove/);

    assert.deepEqual(problems([/the server responded with a status of 403/]), [],
      'no console errors or CSP violations');
  });

test('Users: add a user, make them administrator and back; the last administrator stays',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const server = await startServer();
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
    });
    const [name, value] = await fullSession(server);
    browser = await launchBrowser();
    const { context, page, problems } = await newPage(browser);
    await context.addCookies([{ name, value, url: server.base }]);

    await page.goto(`${server.base}/users`, { waitUntil: 'load' });
    const thalia = page.locator('#user-rows tr[data-user="Thalia"]');
    await thalia.waitFor();
    assert.match(await thalia.locator('[data-field=roles]').textContent(), /System Administrator/);

    await page.locator('#new-username').fill('riley');
    await page.locator('#new-password').fill('a long enough passphrase');
    await page.locator('#user-form button[type=submit]').click();
    await waitToast(page, 'User riley added.');
    const riley = page.locator('#user-rows tr[data-user="riley"]');
    await riley.waitFor();
    assert.equal((await riley.locator('[data-field=roles]').textContent()).trim(), 'none');

    await riley.locator('button', { hasText: 'Make administrator' }).click();
    await waitToast(page, 'riley is now an administrator.');
    await riley.locator('[data-field=roles]', { hasText: 'System Administrator' }).waitFor();
    await riley.locator('button', { hasText: 'Remove administrator' }).click();
    await waitToast(page, 'riley is no longer an administrator.');
    await riley.locator('[data-field=roles]', { hasText: 'none' }).waitFor();

    // Thalia is the last administrator: the server refuses, the page says why.
    await thalia.locator('button', { hasText: 'Remove administrator' }).click();
    await waitToast(page, 'last active System Administrator');
    assert.match(await thalia.locator('[data-field=roles]').textContent(), /System Administrator/);

    await riley.locator('button', { hasText: 'Suspend' }).click();
    await waitToast(page, 'riley suspended.');
    await riley.locator('[data-field=status]', { hasText: 'suspended' }).waitFor();

    assert.deepEqual(problems([/the server responded with a status of 409/]), [],
      'no console errors or CSP violations');
  });
