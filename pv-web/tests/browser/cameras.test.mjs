// Headless-Chromium test of the cameras page: a camera is added through the form on a simulated
// RTSP camera (an H.265 one), then edited to point at a second simulated camera (H.264); the
// recorder follows (the camera's codec and its new segments change to H.264, and it keeps
// streaming after the first camera is gone). A motion zone is drawn on the zone editor with
// mouse clicks over the live picture, a corner dragged, a mask drawn, saved, and read back
// through the API; the zone lights up with the moving ball. On a 390-pixel phone the same
// editor takes touch taps and the page has no horizontal scroll. Screenshots (desktop 1280×800,
// phone 390×844) go to PV_ARTIFACTS (default /tmp/pv/shots).
//
// Run:  PV_BIN=…/pentavision PV_TESTCAM=…/examples/testcam node --test cameras.test.mjs

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import {
  TEST_TIMEOUT_MS, startServer, launchBrowser, cleanupAll, newPage, toastTexts, totpCode,
  startCamera, poll, call, waitToast,
} from './harness.mjs';

after(cleanupAll, { timeout: 30_000 });

const PASSWORD = 'correct horse battery staple';
const SHOTS = process.env.PV_ARTIFACTS || '/tmp/pv/shots';

/** First sign-in with the setup code, a password and an authenticator app: a full session. */
async function signIn(page, server) {
  await page.goto(`${server.base}/login`, { waitUntil: 'load' });
  const login = await call(page, 'POST', '/api/v1/auth/login', { username: 'Thalia', password: server.setupCode });
  assert.equal(login.status, 200, `sign-in with the setup code: ${login.text}`);
  const pw = await call(page, 'POST', '/api/v1/auth/password', { new_password: PASSWORD });
  assert.ok(pw.status < 300, `password: ${pw.status} ${pw.text}`);
  const start = await call(page, 'POST', '/api/v1/auth/totp/start');
  assert.equal(start.status, 200, `TOTP start: ${start.text}`);
  const confirm = await call(page, 'POST', '/api/v1/auth/totp/confirm', { code: totpCode(start.body.secret) });
  assert.equal(confirm.status, 200, `TOTP confirm: ${confirm.text}`);
  const me = await call(page, 'GET', '/api/v1/auth/me');
  assert.equal(me.body?.stage, 'full', `a full session: ${me.text}`);
}

/** Click at (fx, fy), fractions of the drawing area. */
async function clickAt(page, fx, fy) {
  const box = await page.locator('#zone-svg').boundingBox();
  await page.mouse.click(box.x + box.width * fx, box.y + box.height * fy);
}

test('a camera is edited to another stream, the recorder follows, and a motion zone is drawn',
  { timeout: TEST_TIMEOUT_MS * 5 }, async () => {
    await mkdir(SHOTS, { recursive: true });
    const first = await startCamera('h265');
    const second = await startCamera('moving');
    const server = await startServer({ env: { PV_RECORDING__SEGMENT_SECONDS: '2' } });
    const browser = await launchBrowser();
    const { context, page, problems } = await newPage(browser);
    await signIn(page, server);

    // Add the camera through the form.
    await page.goto(`${server.base}/cameras`, { waitUntil: 'load' });
    await page.fill('#cam-name', 'Porch');
    await page.fill('#cam-main', first.url);
    await page.click('#camera-form button[type=submit]');
    await waitToast(page, 'Camera Porch added.');
    const cams = await call(page, 'GET', '/api/v1/cameras');
    const cam = cams.body.find((c) => c.name === 'Porch');
    assert.ok(cam, `the camera is listed: ${cams.text}`);
    const camPath = `/api/v1/cameras/${cam.id}`;
    await poll('the first camera streams in H.265', async () => {
      const c = (await call(page, 'GET', camPath)).body;
      return { done: c.status.state === 'streaming' && c.video_codec === 'h265', value: c };
    }, 30_000);
    // Its thumbnail comes from the live stream at once, not after the first segment.
    await page.click('[data-action=cameras-refresh]');
    const thumb = page.locator(`tr[data-camera="${cam.id}"] img.thumb`);
    await poll('the new camera has a thumbnail', async () => {
      const w = await thumb.evaluate((i) => i.complete ? i.naturalWidth : 0).catch(() => 0);
      return { done: w > 0, value: w };
    }, 15_000);

    // Edit: the second camera's URL; the password field is empty and stays so.
    await page.locator(`tr[data-camera="${cam.id}"] button`, { hasText: 'Settings' }).click();
    await page.locator('#camera-settings').waitFor({ state: 'visible' });
    assert.equal(await page.inputValue('#edit-main'), first.url);
    assert.equal(await page.inputValue('#edit-pass'), '');
    // The same checks as creation, reported as a toast.
    await page.fill('#edit-main', 'http://example.com/');
    await page.click('#edit-form button[type=submit]');
    await waitToast(page, 'must start with rtsp://');
    const editedAt = new Date();
    await page.fill('#edit-main', second.url);
    await page.click('#edit-form button[type=submit]');
    await waitToast(page, 'Camera Porch saved; its recorder reconnects');

    // The recorder follows: the camera's stream is now H.264, and new segments are H.264.
    const followed = await poll('the recorder follows the new URL', async () => {
      const c = (await call(page, 'GET', camPath)).body;
      return { done: c.main_url === second.url && c.status.state === 'streaming' && c.video_codec === 'h264', value: c };
    }, 30_000);
    assert.equal(followed.main_url, second.url);
    await poll('H.264 segments recorded after the edit', async () => {
      const segs = (await call(page, 'GET', `/api/v1/recordings?camera_id=${cam.id}`)).body || [];
      const fresh = segs.filter((s) => s.codec === 'h264' && new Date(s.started_at) >= editedAt);
      return { done: fresh.length >= 1, value: segs.map((s) => [s.codec, s.started_at, s.end_reason]) };
    }, 30_000);
    // The first camera goes away; recording goes on from the second.
    first.proc.kill();
    const killedAt = new Date();
    await page.waitForTimeout(3000);
    await poll('segments recorded after the first camera is gone', async () => {
      const c = (await call(page, 'GET', camPath)).body;
      const segs = (await call(page, 'GET', `/api/v1/recordings?camera_id=${cam.id}`)).body || [];
      const fresh = segs.filter((s) => new Date(s.started_at) >= killedAt);
      return { done: c.status.state === 'streaming' && fresh.length >= 2, value: { status: c.status, fresh: fresh.length } };
    }, 30_000);

    // Draw a zone with mouse clicks over the current picture.
    await poll('the editor shows the current picture', async () => {
      const w = await page.locator('#zone-picture').evaluate((i) => i.complete ? i.naturalWidth : 0);
      return { done: w > 0, value: w };
    }, 15_000);
    // (Earlier toasts are dismissed so that none lies over the picture.)
    for (const close of await page.locator('#toasts .toast__close').all()) await close.click().catch(() => {});
    await page.waitForTimeout(1000); // the smooth scroll to the settings ends
    await page.locator('#zone-stage').evaluate((e) => e.scrollIntoView({ block: 'end' }));
    await page.click('[data-zone=new-zone]');
    await clickAt(page, 0.05, 0.05);
    await clickAt(page, 0.95, 0.05);
    await clickAt(page, 0.95, 0.95);
    await clickAt(page, 0.05, 0.95);
    await clickAt(page, 0.05, 0.05); // the first corner again: closes the shape
    assert.equal(await page.locator('#zone-svg polygon').count(), 1, 'one closed shape');
    await page.fill('#zone-name', 'Driveway');
    await page.locator('#zone-sens').fill('1');
    // Drag the bottom-right corner a little.
    const corner = page.locator('#zone-svg circle.zone-corner[data-corner="2"]');
    const cb = await corner.boundingBox();
    const svgBox = await page.locator('#zone-svg').boundingBox();
    await page.mouse.move(cb.x + cb.width / 2, cb.y + cb.height / 2);
    await page.mouse.down();
    await page.mouse.move(svgBox.x + svgBox.width * 0.9, svgBox.y + svgBox.height * 0.9, { steps: 5 });
    await page.mouse.up();
    // And a small mask in the top-left corner, closed with the button.
    await page.click('[data-zone=new-mask]');
    await clickAt(page, 0.1, 0.1);
    await clickAt(page, 0.25, 0.1);
    await clickAt(page, 0.1, 0.25);
    await page.click('[data-zone=finish]');
    await page.click('[data-zone=save]');
    await waitToast(page, 'Motion zones of Porch saved');

    const zones = (await call(page, 'GET', `${camPath}/motion-zones`)).body;
    assert.equal(zones.length, 2, JSON.stringify(zones));
    const [zone, mask] = zones;
    assert.equal(zone.name, 'Driveway');
    assert.equal(zone.mask, false);
    assert.equal(zone.sensitivity, 1);
    assert.equal(zone.polygon.length, 4);
    const near = (a, b) => Math.abs(a - b) < 0.02;
    assert.ok(near(zone.polygon[0][0], 0.05) && near(zone.polygon[0][1], 0.05), JSON.stringify(zone.polygon));
    assert.ok(near(zone.polygon[2][0], 0.9) && near(zone.polygon[2][1], 0.9), `the dragged corner: ${JSON.stringify(zone.polygon)}`);
    assert.equal(mask.mask, true);
    assert.equal(mask.polygon.length, 3);

    // The detector uses the zones at once (no restart of the server): the moving ball is seen
    // and the editor lights up.
    await poll('motion is seen in the zone', async () => {
      const c = (await call(page, 'GET', camPath)).body;
      return { done: c.status.motion === true, value: c.status };
    }, 30_000);
    await page.locator('#zone-motion', { hasText: 'Motion now' }).waitFor({ timeout: 10_000 });

    await page.locator('#camera-settings').scrollIntoViewIfNeeded();
    await page.waitForTimeout(500);
    await page.screenshot({ path: `${SHOTS}/cameras-edit-desktop.png`, fullPage: true });
    await page.locator('#zone-editor').screenshot({ path: `${SHOTS}/cameras-zones-desktop.png` });

    // A 390-pixel phone with touch: a tap-drawn mask, no horizontal scroll.
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
      storageState: await context.storageState(),
    });
    const p2 = await phone.newPage();
    await p2.goto(`${server.base}/cameras`, { waitUntil: 'load' });
    await p2.locator(`tr[data-camera="${cam.id}"] button`, { hasText: 'Settings' }).click();
    await p2.locator('#zone-svg polygon').first().waitFor();
    await p2.waitForTimeout(1500); // the smooth scroll to the settings ends
    await p2.locator('#zone-stage').evaluate((e) => e.scrollIntoView({ block: 'center' }));
    const tapBox = await p2.locator('#zone-svg').boundingBox();
    assert.ok(tapBox.x >= 0 && tapBox.x + tapBox.width <= 390, `the editor fits the phone: ${JSON.stringify(tapBox)}`);
    await p2.locator('[data-zone=new-mask]').tap();
    await p2.waitForTimeout(300);
    for (const [fx, fy] of [[0.6, 0.6], [0.8, 0.6], [0.7, 0.8], [0.6, 0.6]]) {
      await p2.locator('#zone-stage').evaluate((e) => e.scrollIntoView({ block: 'center' }));
      const b = await p2.locator('#zone-svg').boundingBox();
      await p2.touchscreen.tap(b.x + b.width * fx, b.y + b.height * fy);
    }
    const drawn = await p2.locator('#zone-svg polygon').count();
    if (drawn !== 3) await p2.screenshot({ path: `${SHOTS}/debug-phone.png` });
    assert.equal(drawn, 3, `a third shape drawn by touch (${await p2.locator('#zone-status').textContent()}; box ${JSON.stringify(tapBox)}, now ${JSON.stringify(await p2.locator('#zone-svg').boundingBox())})`);
    const scroll = await p2.evaluate(() => document.documentElement.scrollWidth);
    const wide = await p2.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > 391)
      .slice(0, 6).map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`));
    assert.ok(scroll <= 390, `no horizontal scroll at 390 px (scrollWidth ${scroll}): ${wide.join(', ')}`);
    await p2.locator('#zone-editor').scrollIntoViewIfNeeded();
    await p2.waitForTimeout(500);
    await p2.screenshot({ path: `${SHOTS}/cameras-zones-phone.png` });
    await p2.screenshot({ path: `${SHOTS}/cameras-phone.png`, fullPage: true });
    await phone.close();

    assert.deepEqual(problems([/snapshot\.jpg/, /Failed to load resource/]), [],
      `no page errors; toasts ${JSON.stringify(await toastTexts(page))}`);
    second.proc.kill();
  });
