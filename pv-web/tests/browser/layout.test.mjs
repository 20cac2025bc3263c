// Headless-Chromium test of the first hour's layout and offline behaviour, with every request
// to another origin cut (Playwright route interception aborts it, and Chromium resolves no
// other host name):
// - GraphiQL loads from the server's own paths and runs a query; Swagger UI renders.
// - At 390 px no page scrolls sideways (scrollWidth <= clientWidth on every page, signed in
//   as the administrator, plus the sign-in and enrolment pages); the navigation collapses
//   behind a menu button and opens as a panel.
// - An unknown URL shows the HTML 404 page with the navigation to a browser, and problem JSON
//   to an API client.
// - Toasts: an error carries the title "Error" and can be dismissed, server messages lose
//   Markdown backticks and field paths, and the stack moves off the focused control.
// - The overview names each camera's state (a camera at a dead address shows why) and the
//   disk outlook; Block / Allow warns when a block lies inside an exemption; times carry their
//   zone.
// Screenshots of every page at 1280 and 390 px go to PV_SHOTS (default /tmp/shots) as
// layout-<page>-<width>.png.
//
// Run:  PV_BIN=…/pentavision node --test layout.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  TEST_TIMEOUT_MS, GREEN, BLACK, startServer, stopServer, launchBrowser, cleanupAll, newPage,
  waitToast, apiLogin, totpCode, totpStep, call, startCamera, poll,
} from './harness.mjs';

const SHOTS = process.env.PV_SHOTS || '/tmp/shots';
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

let server = null;
let browser = null;
let cookie = null; // [name, value] of the administrator's full session
let enrolCookie = null; // a session still enrolling
let cameraId = null;
let camera = null; // the simulated camera (testcam), for a camera that records

after(async () => {
  if (camera) camera.proc.stdin.end();
  if (browser) await browser.close().catch(() => {});
  await stopServer(server);
  await cleanupAll();
}, { timeout: 30_000 });

/** POST as the cookie's owner from Node; the parsed JSON body. */
async function post(path, body, session) {
  const r = await fetch(new URL(path, server.url), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', Cookie: session },
    body: JSON.stringify(body || {}),
  });
  assert.ok(r.ok, `${path}: ${r.status} ${await r.clone().text()}`);
  const text = await r.text();
  return text ? JSON.parse(text) : {};
}

before(async () => {
  server = await startServer({ env: { PV_RECORDING__SEGMENT_SECONDS: '2' } });
  const login = await apiLogin(server, { username: 'Thalia', password: server.setupCode });
  assert.equal(login.status, 200, 'setup-code sign-in');
  const session = login.headers.get('set-cookie').split(';')[0];
  await post('/api/v1/auth/password', { new_password: 'correct horse battery staple' }, session);
  const { secret } = await post('/api/v1/auth/totp/start', {}, session);
  await post('/api/v1/auth/totp/confirm', { code: totpCode(secret, totpStep()) }, session);
  cookie = session.split('=');
  browser = await launchBrowser({
    // Belt and braces with the route interception below: no host name but ours resolves.
    args: ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1'],
  });
}, { timeout: TEST_TIMEOUT_MS });

/**
 * A page whose context reaches only the server: every request to another origin is aborted
 * and listed in `outside`. Signed in as the administrator unless `session` is null.
 */
async function offlinePage({ viewport = DESKTOP, session = cookie } = {}) {
  const made = await newPage(browser);
  const { context, page } = made;
  await page.setViewportSize(viewport);
  const outside = [];
  const origin = new URL(server.base).origin;
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || url.startsWith('blob:') || new URL(url).origin === origin) return route.continue();
    outside.push(url);
    return route.abort('internetdisconnected');
  });
  if (session) await context.addCookies([{ name: session[0], value: session[1], url: server.base }]);
  return { ...made, outside };
}

/** Horizontal overflow of the page: { scrollWidth, clientWidth, culprits }. */
const overflow = (page) => page.evaluate(() => {
  const root = document.documentElement;
  const culprits = [];
  if (root.scrollWidth > root.clientWidth) {
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.right > root.clientWidth + 1 && r.width > 0 && getComputedStyle(el).position !== 'fixed') {
        culprits.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')} right=${Math.round(r.right)}`);
        if (culprits.length > 6) break;
      }
    }
    // Text that runs out of its box (an unbreakable word in a narrow cell) has no element of
    // its own: name its parent.
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let n = walk.nextNode(); n && culprits.length < 10; n = walk.nextNode()) {
      if (!n.textContent.trim()) continue;
      range.selectNodeContents(n);
      const r = range.getBoundingClientRect();
      if (r.right > root.clientWidth + 1 && r.width > 0) {
        const el = n.parentElement;
        culprits.push(`text "${n.textContent.trim().slice(0, 40)}" in ${el.tagName.toLowerCase()}.${[...el.classList].join('.')} right=${Math.round(r.right)}`);
      }
    }
  }
  return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, culprits };
});

async function shot(page, name) {
  await mkdir(SHOTS, { recursive: true });
  const width = page.viewportSize().width;
  const height = Math.min(await page.evaluate(() => document.documentElement.scrollHeight), 2400);
  await page.screenshot({ path: join(SHOTS, `layout-${name}-${width}.png`), fullPage: true, clip: { x: 0, y: 0, width, height } });
}

test('GraphiQL loads and runs a query, and Swagger UI renders, with the network cut',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const { page, outside, problems } = await offlinePage();
    const graphiql = await page.goto(`${server.base}/graphql`, { waitUntil: 'load' });
    const csp = graphiql.headers()['content-security-policy'] || '';
    assert.match(csp, /script-src 'self'(;|$)/, `GraphiQL's CSP allows scripts from here only: ${csp}`);
    assert.doesNotMatch(csp, /https?:|\*|unsafe/, `GraphiQL's CSP names no outside or inline source: ${csp}`);
    const run = page.locator('.graphiql-execute-button');
    await run.waitFor({ state: 'visible' });
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
    await page.evaluate(() => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror
      .setValue('{ cameras { nodes { id name } } }'));
    await run.click();
    const result = page.locator('.graphiql-response .CodeMirror-code');
    await result.filter({ hasText: '"nodes"' }).waitFor();
    const text = (await result.textContent()).replace(/\s+/g, ' ');
    assert.match(text, /"cameras"/, `the query ran: ${text}`);
    assert.doesNotMatch(text, /"errors"/, `no GraphQL errors: ${text}`);
    await shot(page, 'graphql');
    await page.setViewportSize(PHONE);
    await shot(page, 'graphql');
    const gq = await overflow(page);
    assert.ok(gq.scrollWidth <= gq.clientWidth, `GraphiQL at 390 px scrolls sideways: ${JSON.stringify(gq)}`);

    await page.setViewportSize(DESKTOP);
    const docs = await page.goto(`${server.base}/api/docs`, { waitUntil: 'load' });
    assert.doesNotMatch(docs.headers()['content-security-policy'] || 'missing', /https?:|\*|unsafe|missing/);
    await page.locator('.swagger-ui .info .title').waitFor();
    await page.locator('.swagger-ui .opblock').first().waitFor();
    assert.ok(await page.locator('.swagger-ui .opblock').count() > 20, 'Swagger UI lists the operations');
    await page.locator('.swagger-ui .opblock-summary').first().click();
    await page.locator('.swagger-ui .opblock-body .responses-wrapper').first().waitFor();
    await shot(page, 'api-docs');
    await page.setViewportSize(PHONE);
    await shot(page, 'api-docs');
    const sw = await overflow(page);
    assert.ok(sw.scrollWidth <= sw.clientWidth, `Swagger UI at 390 px scrolls sideways: ${JSON.stringify(sw)}`);

    assert.deepEqual(outside, [], 'no request left the server');
    assert.deepEqual(problems(), [], 'no console errors or CSP violations');
  });

test('every page fits 390 px without sideways scrolling; the menu collapses and opens',
  { timeout: 3 * TEST_TIMEOUT_MS }, async (t) => {
    const { page, outside, problems } = await offlinePage();
    // Something on every page: a camera at a dead address, a rule, an extra user.
    await page.goto(`${server.base}/`, { waitUntil: 'load' });
    const cam = await call(page, 'POST', '/api/v1/cameras',
      { name: 'Back garden by the long hedge', main_url: 'rtsp://127.0.0.1:9/stream' });
    assert.equal(cam.status, 201, cam.text);
    cameraId = cam.body.id;
    const user = await call(page, 'POST', '/api/v1/users',
      { username: 'riley', display_name: 'Riley Night-Shift Operator', password: 'a long enough passphrase' });
    assert.ok(user.status < 300, user.text);
    const enrol = await apiLogin(server, { username: 'riley', password: 'a long enough passphrase' });
    assert.equal(enrol.status, 200, 'riley signs in with the initial password');
    enrolCookie = enrol.headers.get('set-cookie').split(';')[0].split('=');

    const pages = [
      ['overview', '/'], ['live', '/live'], ['cameras', '/cameras'], ['camera-live', `/cameras/${cameraId}/live`],
      ['recordings', '/recordings'], ['storage', '/storage'], ['faces', '/faces'], ['audit', '/audit'], ['ip-rules', '/ip-rules'], ['users', '/users'],
      ['services', '/services'], ['security', '/account/security'], ['not-found', '/no/such/page'],
    ];
    const measured = [];
    for (const viewport of [DESKTOP, PHONE]) {
      await page.setViewportSize(viewport);
      for (const [name, path] of pages) {
        await page.goto(`${server.base}${path}`, { waitUntil: 'load' });
        await page.waitForTimeout(400); // the pages' scripts fill their tables
        const o = await overflow(page);
        measured.push(`${name}@${viewport.width}: ${o.scrollWidth}/${o.clientWidth}`);
        assert.ok(o.scrollWidth <= o.clientWidth,
          `${path} at ${viewport.width} px scrolls sideways: ${JSON.stringify(o)}`);
        await shot(page, name);
      }
    }
    t.diagnostic(measured.join(', '));

    // The menu at 390 px: hidden behind the button, the bar stays one short row; opened, the
    // links are there, and Escape closes it.
    await page.goto(`${server.base}/audit`, { waitUntil: 'load' });
    const bar = await page.locator('.topbar').boundingBox();
    assert.ok(bar.height <= 72, `the top bar is one short row at 390 px (${bar.height} px)`);
    assert.equal(await page.locator('#main-nav').isVisible(), false, 'the navigation is folded away');
    const toggle = page.locator('[data-action=menu-toggle]');
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    await page.locator('#main-nav a', { hasText: 'Users' }).waitFor({ state: 'visible' });
    const nav = await page.locator('#main-nav').boundingBox();
    assert.ok(nav.y + nav.height <= PHONE.height, 'the open menu fits on the screen');
    await shot(page, 'menu-open');
    await page.keyboard.press('Escape');
    await page.locator('#main-nav').waitFor({ state: 'hidden' });
    await toggle.click();
    await page.locator('#main-nav a', { hasText: 'Users' }).click();
    await page.waitForURL((u) => u.pathname === '/users');

    // Tables become labelled cards at 390 px.
    const card = page.locator('#user-rows tr[data-user="riley"] td').nth(1);
    await page.locator('#user-rows tr[data-user="riley"] td[data-label="Name"]').waitFor();
    assert.equal(await card.getAttribute('data-label'), 'Name');
    assert.equal(await page.locator('#user-rows').evaluate((el) => getComputedStyle(el.closest('table').querySelector('thead')).position), 'absolute',
      'the table heading is out of the flow at 390 px');

    // Signed out: the sign-in page; still enrolling: the enrolment page.
    for (const [name, path, session] of [['login', '/login', null], ['enrol', '/enrol', enrolCookie]]) {
      const other = await offlinePage({ viewport: PHONE, session });
      await other.page.goto(`${server.base}${path}`, { waitUntil: 'load' });
      const o = await overflow(other.page);
      assert.ok(o.scrollWidth <= o.clientWidth, `${path} at 390 px scrolls sideways: ${JSON.stringify(o)}`);
      await shot(other.page, name);
      await other.page.setViewportSize(DESKTOP);
      await shot(other.page, name);
      assert.deepEqual(other.outside, []);
      await other.context.close();
    }

    assert.deepEqual(outside, [], 'no request left the server');
    assert.deepEqual(problems([/status of 404/]), [], 'no console errors or CSP violations');
  });

test('unknown pages: HTML with the navigation for browsers, problem JSON for API clients',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const { page, problems } = await offlinePage();
    const resp = await page.goto(`${server.base}/no/such/page`, { waitUntil: 'load' });
    assert.equal(resp.status(), 404);
    assert.match(resp.headers()['content-type'], /^text\/html/);
    await page.locator('h1', { hasText: 'Page not found' }).waitFor();
    assert.ok(await page.locator('#main-nav a[href="/cameras"]').count() === 1, 'the page has the navigation');
    assert.equal(await page.locator('.topbar .user').first().textContent(), 'Thalia');

    const api = await fetch(new URL('/no/such/page', server.url), { headers: { Accept: 'application/json' } });
    assert.equal(api.status, 404);
    assert.match(api.headers.get('content-type'), /^application\/problem\+json/);
    assert.equal((await api.json()).status, 404);
    const under = await fetch(new URL('/api/v1/no-such-thing', server.url), { headers: { Accept: 'text/html' } });
    assert.equal(under.status, 404);
    assert.match(under.headers.get('content-type'), /^application\/problem\+json/, 'under /api/ it stays JSON');
    const curl = await fetch(new URL('/no/such/page', server.url), { headers: { Accept: '*/*' } });
    assert.match(curl.headers.get('content-type'), /^application\/problem\+json/, 'curl gets problem JSON');
    assert.deepEqual(problems([/status of 404/]), []);
  });

test('toasts: errors titled and dismissable, messages for people, off the focused control',
  { timeout: TEST_TIMEOUT_MS }, async () => {
    const { page, problems } = await offlinePage();
    await page.goto(`${server.base}/services`, { waitUntil: 'load' });
    await page.locator('#service-rows tr').first().waitFor();

    // A server message with a field path and backticks, as the pages show it.
    const shown = await page.evaluate(async () => {
      try {
        await window.pv.api('POST', '/api/v1/cameras', { name: 'Porch', main_url: 'http://example.invalid/x' });
        return null;
      } catch (e) {
        window.pv.toast(e.message, 'error');
        return e.message;
      }
    });
    assert.ok(shown, 'the server refused the URL');
    const error = page.locator('#toasts .toast.toast--error').last();
    await error.waitFor({ state: 'visible' });
    const text = await error.textContent();
    assert.doesNotMatch(text, /`|main_url/, `no backticks or field paths in "${text}" (server said "${shown}")`);
    const look = await error.evaluate((el) => ({
      bg: getComputedStyle(el).backgroundColor, color: getComputedStyle(el).color,
      title: getComputedStyle(el.querySelector('.toast__text'), '::before').content,
      role: el.getAttribute('role'),
    }));
    assert.equal(look.bg, GREEN, 'error toasts keep the green');
    assert.equal(look.color, BLACK, 'and the black text');
    assert.match(look.title, /Error/, 'an error is titled "Error"');
    assert.equal(look.role, 'alert');
    // The same clean-up on messages of every shape the server has sent.
    const cleaned = await page.evaluate(() => [
      'main_url: the address must start with `rtsp://`',
      'windows[0].start: `25:00` is not a time HH:MM',
      'the file of recording 4 is gone (run `pentavision check`)',
      'Status refreshed: 3 of 3 databases ready.',
    ].map(window.pv.humanMessage));
    assert.deepEqual(cleaned, [
      'Main stream address: the address must start with \u201crtsp://\u201d',
      'Start: \u201c25:00\u201d is not a time HH:MM',
      'the file of recording 4 is gone (run \u201cpentavision check\u201d)',
      'Status refreshed: 3 of 3 databases ready.',
    ]);
    await error.locator('.toast__close').click();
    await error.waitFor({ state: 'detached', timeout: 3_000 });

    // Client-side checks report through the same toasts: an empty required field.
    await page.goto(`${server.base}/users`, { waitUntil: 'load' });
    await page.locator('#user-form button[type=submit]').click();
    await waitToast(page, 'User name');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'new-username', 'the field gets focus');

    // The stack never covers the focused control (phone: toasts at the top, unless that is
    // where the focus is).
    await page.setViewportSize(PHONE);
    for (const selector of ['#new-username', '[data-action=users-refresh]']) {
      await page.locator(selector).focus();
      if (selector.includes('refresh')) {
        // Right under the top bar, where phone toasts start: the stack must go to the bottom.
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.locator(selector).focus();
      }
      await page.evaluate(() => window.pv.toast('A long message that wraps over two or three lines on a phone screen.', 'info'));
      const overlap = await page.evaluate((sel) => {
        const a = document.getElementById('toasts').getBoundingClientRect();
        const b = document.querySelector(sel).getBoundingClientRect();
        return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
      }, selector);
      assert.equal(overlap, false, `the toasts do not cover ${selector}`);
    }
    assert.equal(await page.locator('#toasts.toasts--flip').count(), 1,
      'with the focus under the top bar, the phone toasts moved to the bottom');
    await shot(page, 'toasts');
    assert.deepEqual(problems([/status of 400/]), []);
  });

test('overview: camera states and the disk outlook; Block / Allow warns; times name their zone',
  { timeout: 2 * TEST_TIMEOUT_MS }, async () => {
    const { page, context, problems } = await offlinePage();
    if (cameraId === null) {
      await page.goto(`${server.base}/`, { waitUntil: 'load' });
      const cam = await call(page, 'POST', '/api/v1/cameras',
        { name: 'Back garden by the long hedge', main_url: 'rtsp://127.0.0.1:9/stream' });
      cameraId = cam.body.id;
    }
    await page.goto(`${server.base}/`, { waitUntil: 'load' });
    const row = page.locator('#overview-cameras tr[data-camera="Back garden by the long hedge"]');
    await row.waitFor();
    const state = (await row.locator('.badge').textContent()).trim();
    assert.ok(['Error', 'Reconnecting', 'Starting', 'Offline'].includes(state), `a dead camera is not recording: ${state}`);
    assert.match(await row.locator('td.reason').textContent(), /cannot connect|refused|No recorder/,
      'the reason is named');
    assert.match(await page.locator('[data-card=recording]').textContent(), /0 of 1 camera recording/);
    assert.match(await page.locator('[data-card=footage]').textContent(), /free/);
    assert.match(await page.locator('[data-card=days]').textContent(), /Not known yet/);

    // A camera that records: "Recording", its newest footage, and the days that fit at the
    // rate it writes.
    camera = await startCamera();
    const yard = await call(page, 'POST', '/api/v1/cameras', { name: 'Test yard', main_url: camera.url });
    assert.equal(yard.status, 201, yard.text);
    const days = await poll('the overview shows the recording camera and the days that fit', async () => {
      await page.goto(`${server.base}/`, { waitUntil: 'load' });
      const r = page.locator('#overview-cameras tr[data-camera="Test yard"]');
      const badge = (await r.locator('.badge').textContent()).trim();
      const newest = (await r.locator('td').nth(2).textContent()).trim();
      const fit = (await page.locator('[data-field=days-fit]').textContent()).trim();
      const done = badge === 'Recording' && newest !== 'none yet' && /about|more than/.test(fit);
      return { done, value: { badge, newest, fit } };
    }, 45_000);
    assert.match(days.newest, / [A-Z]{2,5}$|UTC$/, `the newest footage time names its zone: ${days.newest}`);
    assert.match(await page.locator('[data-card=recording]').textContent(), /1 of 2 cameras recording/);
    assert.match(await page.locator('[data-card=days]').textContent(), /rate of .* a day/);
    await shot(page, 'overview-recording');
    await page.setViewportSize(PHONE);
    await shot(page, 'overview-recording');
    await page.setViewportSize(DESKTOP);

    // A block inside an exemption: the rule is added, with a warning that the exemption wins.
    await page.goto(`${server.base}/ip-rules`, { waitUntil: 'load' });
    await page.locator('#rule-rows tr[data-network="10.0.0.0/8"][data-action="exempt"]').waitFor();
    await page.locator('#rule-network').fill('10.1.2.3');
    await page.locator('#rule-form button[type=submit]').click();
    await waitToast(page, 'Blocked 10.1.2.3.');
    const warn = await waitToast(page, 'lies inside the exemption 10.0.0.0/8');
    assert.match(await warn.getAttribute('class'), /toast--warn/);
    await page.locator('#rule-rows tr[data-network="10.1.2.3"][data-overridden="10.0.0.0/8"]').waitFor();
    // The other way round: an exemption over an existing block says the block stops applying.
    await page.locator('#rule-network').fill('198.51.100.7');
    await page.locator('#rule-form button[type=submit]').click();
    await waitToast(page, 'Blocked 198.51.100.7.');
    await page.locator('#rule-network').fill('198.51.100.0/24');
    await page.locator('#rule-action').selectOption('exempt');
    await page.locator('#rule-form button[type=submit]').click();
    await waitToast(page, 'the block on 198.51.100.7 no longer applies');
    await page.locator('#rule-action').selectOption('block');
    await page.locator('#rule-network').fill('203.0.113.5');
    await page.locator('#rule-form button[type=submit]').click();
    await waitToast(page, 'Blocked 203.0.113.5.');
    assert.equal(await page.locator('#toasts .toast', { hasText: '203.0.113.5 lies inside' }).count(), 0,
      'no warning for a block outside every exemption');

    assert.deepEqual(problems(), []);
    await context.close();

    // Audit and users, for someone in New York: the same formatter, in their zone, named.
    const ny = await browser.newContext({ viewport: DESKTOP, timezoneId: 'America/New_York', locale: 'en-US' });
    await ny.addCookies([{ name: cookie[0], value: cookie[1], url: server.base }]);
    const nyPage = await ny.newPage();
    await nyPage.goto(`${server.base}/audit`, { waitUntil: 'load' });
    const zone = await nyPage.evaluate(() => window.pv.formatTime('2026-01-02T03:04:05Z'));
    assert.match(zone, /Jan 1, 2026.*10:04:05 PM EST$/, `a formatted time is local and names its zone: ${zone}`);
    const when = nyPage.locator('#audit-rows tr:not(:has(td.hint)) td').first();
    await when.waitFor();
    const shownAudit = await when.textContent();
    assert.match(shownAudit, / E[SD]T$/, `audit times are in the user's zone: ${shownAudit}`);
    assert.match(await nyPage.locator('[data-field=time-zone]').textContent(), /America\/New_York/);
    await nyPage.goto(`${server.base}/users`, { waitUntil: 'load' });
    const last = nyPage.locator('#user-rows tr[data-user="Thalia"] td').nth(4);
    await last.waitFor();
    const shownUsers = await last.textContent();
    assert.match(shownUsers, / E[SD]T$/, `users' times are in the same zone and format: ${shownUsers}`);
    await ny.close();
  });
