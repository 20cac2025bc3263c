// Headless-Chromium test of the cameras and recordings pages: a simulated RTSP camera (the
// pv-media `testcam` example) is added through the REST API, the cameras page shows it
// streaming with a snapshot, and the recordings page draws its segments on the timeline and
// plays one.
//
// Run:  PV_BIN=…/pentavision PV_TESTCAM=…/examples/testcam npm test
//
// The browser is signed in with an API token from `pentavision token create` sent on every
// request (the passkey and TOTP sign-ins are tested in ui.test.mjs and totp.test.mjs).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  TEST_TIMEOUT_MS, startServer, stopServer, launchBrowser, cleanupAll, newPage, startCamera, poll,
} from './harness.mjs';

after(cleanupAll, { timeout: 30_000 });

test('cameras page shows a streaming camera; the recordings timeline draws and plays its segments',
  { timeout: TEST_TIMEOUT_MS * 2 }, async (t) => {
    const camera = await startCamera();
    const server = await startServer({ env: { PV_RECORDING__SEGMENT_SECONDS: '2' } });
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
      camera.proc.stdin.end();
      camera.proc.kill('SIGTERM');
    });
    const token = execFileSync(process.env.PV_BIN,
      ['--data-dir', server.dataDir, 'token', 'create', '--user', 'Thalia']).toString().trim();
    const api = (path, init = {}) => fetch(new URL(`/api/v1${path}`, server.url), {
      ...init,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers || {}) },
    });

    const created = await api('/cameras', { method: 'POST', body: JSON.stringify({ name: 'Test yard', main_url: camera.url }) });
    assert.equal(created.status, 201, await created.clone().text());
    const cam = await created.json();
    const segments = await poll('three segments recorded', async () => {
      const list = await (await api(`/recordings?camera_id=${cam.id}`)).json();
      return { done: list.length >= 3, value: list };
    }, 30_000);
    t.diagnostic(`${segments.length} segments recorded`);

    browser = await launchBrowser();
    const { context, page, problems } = await newPage(browser);
    await context.setExtraHTTPHeaders({ Authorization: `Bearer ${token}` });

    // --- Cameras page: the camera, streaming, with a decoded snapshot.
    await page.goto(`${server.base}/cameras`, { waitUntil: 'load' });
    const row = page.locator(`#camera-rows tr[data-camera="${cam.id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /Test yard/);
    assert.match(await row.locator('[data-field=status]').textContent(), /streaming/);
    const snap = await api(`/cameras/${cam.id}/snapshot.jpg`);
    assert.equal(snap.status, 200, `snapshot: ${snap.status} ${await snap.clone().text().catch(() => '')}`);
    const thumb = row.locator('img.thumb');
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await thumb.elementHandle());
    assert.equal(await thumb.evaluate((el) => el.naturalWidth), 256, 'the snapshot is the camera picture, scaled');

    // --- Recordings page: one span per segment on the camera's timeline.
    await page.goto(`${server.base}/recordings`, { waitUntil: 'load' });
    const spans = page.locator(`.timeline[data-camera="${cam.id}"] .span`);
    await spans.nth(2).waitFor();
    const shown = await spans.count();
    assert.ok(shown >= segments.length, `at least the ${segments.length} listed segments are drawn (drew ${shown})`);
    const ids = await spans.evaluateAll((els) => els.map((e) => Number(e.dataset.segment)));
    for (const s of segments) assert.ok(ids.includes(s.id), `segment ${s.id} is on the timeline`);
    const box = await spans.first().boundingBox();
    assert.ok(box && box.width >= 1, 'a span has a visible width');

    // Click → the player loads that segment (range requests to the media endpoint). Short
    // test segments overlap at this scale: the newest is on top.
    const newest = ids[ids.length - 1];
    const media = page.waitForResponse((r) => r.url().includes(`/api/v1/recordings/${newest}/media`));
    await spans.last().click();
    const response = await media;
    assert.ok([200, 206].includes(response.status()), `media answered ${response.status()}`);
    assert.equal(response.headers()['content-type'], 'video/mp4');
    const player = page.locator('#player');
    assert.equal(await player.isVisible(), true, 'the player is shown');
    assert.match(await page.locator('#player-caption').textContent(), /Test yard/);
    const playable = await player.evaluate((v) => v.canPlayType('video/mp4; codecs="avc1.42E01E"'));
    if (playable) {
      await page.waitForFunction(() => document.getElementById('player').readyState >= 1, null, { timeout: 15_000 });
      const duration = await player.evaluate((v) => v.duration);
      t.diagnostic(`the player reads the segment: ${duration} s`);
      assert.ok(duration > 1 && duration < 3.5, `the player reads a ~2 s segment (${duration} s)`);
    } else {
      t.diagnostic('this Chromium build cannot decode H.264; the player check stops at the media response');
    }

    if (process.env.PV_ARTIFACTS) {
      await page.screenshot({ path: `${process.env.PV_ARTIFACTS}/ui-recordings.png`, fullPage: true });
    }

    // --- Recording settings: the camera's local time, and a schedule window that turns
    // recording off, saved through the page (with its CSRF token) and applied at once.
    await page.goto(`${server.base}/cameras`, { waitUntil: 'load' });
    await row.waitFor();
    await row.locator('button', { hasText: 'Settings' }).click();
    const clock = page.locator('#settings-clock');
    await clock.filter({ hasText: 'local time' }).waitFor();
    assert.match(await clock.textContent(), /Test yard: local time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(UTC\), recording now: continuous$/);
    await page.locator('[data-action=schedule-add]').click();
    const win = page.locator('#schedule-rows tr').first();
    await win.locator('[name=mode]').selectOption('off');
    await win.locator('[name=start]').fill('00:00');
    await win.locator('[name=end]').fill('24:00');
    await page.locator('[data-action=schedule-save]').click();
    await page.locator('#toasts .toast', { hasText: 'Schedule of Test yard saved.' }).waitFor();
    await clock.filter({ hasText: 'recording now: off (by the schedule)' }).waitFor();
    const stopped = await poll('the schedule stops the recorder', async () => {
      const c = await (await api(`/cameras/${cam.id}`)).json();
      return { done: c.status.state === 'disabled', value: c.status };
    }, 15_000);
    assert.match(stopped.reason, /schedule/);
    if (process.env.PV_ARTIFACTS) {
      await page.screenshot({ path: `${process.env.PV_ARTIFACTS}/ui-camera-settings.png`, fullPage: true });
    }
    assert.deepEqual(await page.evaluate(() => window.__pv.csp), [], 'no CSP violations');
    assert.deepEqual(problems([/Failed to load resource/]), [], 'no console errors');
  });
