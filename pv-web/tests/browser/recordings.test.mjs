// Headless-Chromium test of the cameras and recordings pages: a simulated RTSP camera with
// sound (the pv-media `testcam` example, H.264 + AAC, 2-s segments) is added twice through the
// REST API; the cameras page shows it streaming with a snapshot, and the recordings page draws
// its segments on a timeline that zooms to one hour, shows a thumbnail while scrubbing (the
// thumbnail operation is checked directly too: finished segments, the one being recorded,
// nothing recorded), plays three consecutive segments through Media Source without a stall
// longer than half a second, answers J/K and the speed control, downloads a marked range,
// plays both cameras on one playhead, and fits a 390-px phone. Screenshots go to
// PV_ARTIFACTS.
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

test('cameras page shows a streaming camera; the recordings timeline zooms, scrubs and plays its segments',
  { timeout: TEST_TIMEOUT_MS * 4 }, async (t) => {
    const camera = await startCamera('aac');
    const server = await startServer({
      env: { PV_RECORDING__SEGMENT_SECONDS: '2', RUST_LOG: 'info,pv_web::nvr::footage=debug,pv_web::rest::recordings=debug' },
    });
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
      camera.proc.stdin.end();
      camera.proc.kill('SIGTERM');
    });
    const token = execFileSync(process.env.PV_BIN,
      ['--data-dir', server.dataDir, 'token', 'create', '--user', 'Thalia']).toString().trim();
    // Every request gives up after 60 s (a hung answer fails here, with the server's log, rather
    // than at the test's own timeout without a word).
    const api = (path, init = {}) => fetch(new URL(`/api/v1${path}`, server.url), {
      signal: AbortSignal.timeout(60_000),
      ...init,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers || {}) },
    });

    const created = await api('/cameras', { method: 'POST', body: JSON.stringify({ name: 'Test yard', main_url: camera.url }) });
    assert.equal(created.status, 201, await created.clone().text());
    const cam = await created.json();
    // A second camera (the same simulated stream) to play in sync with the first.
    const created2 = await api('/cameras', { method: 'POST', body: JSON.stringify({ name: 'Back door', main_url: camera.url }) });
    assert.equal(created2.status, 201, await created2.clone().text());
    const cam2 = await created2.json();
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
    const track = page.locator(`.timeline[data-camera="${cam.id}"]`);
    const spans = track.locator('.span:not(.live)');
    await spans.nth(2).waitFor({ state: 'attached' });
    const ids = await spans.evaluateAll((els) => els.map((e) => Number(e.dataset.segment)));
    for (const s of segments) assert.ok(ids.includes(s.id), `segment ${s.id} is on the timeline`);
    assert.match(await page.locator('#tz-note').textContent(), /your time zone, .+/, 'the time zone is named');

    // Zoom: the wheel zooms in around the pointer; the buttons step to exactly one hour.
    const view = () => page.evaluate(() => window.__pvRecordings.view());
    const day = await view();
    assert.equal(day.end - day.start, 24 * 3600_000, 'the day is shown whole at first');
    const tb = await track.boundingBox();
    await page.mouse.move(tb.x + tb.width * 0.9, tb.y + tb.height / 2);
    await page.mouse.wheel(0, -300);
    await page.waitForFunction(() => {
      const v = window.__pvRecordings.view();
      return v.end - v.start < 24 * 3600_000;
    });
    await page.locator('#zoom-day').click();
    for (let i = 0; i < 4; i++) await page.locator('#zoom-in').click();
    await page.locator('#zoom-label', { hasText: /^1 hour$/ }).waitFor();
    const hour = await view();
    assert.equal(hour.end - hour.start, 3600_000, 'zoomed to one hour');
    assert.ok(hour.start <= Date.parse(segments[0].started_at) && Date.now() <= hour.end,
      'the hour holds the footage and now');
    const ticks = await page.locator('#tl-axis .rec-tick').allTextContents();
    assert.ok(ticks.length >= 4 && ticks.every((t) => /^\d\d?:\d\d( [AP]M)?$/.test(t)),
      `minute ticks at one hour: ${ticks.join(' ')}`);
    const live = track.locator('.span.live');
    t.diagnostic(`segment being recorded drawn: ${await live.count()}`);

    // The thumbnail operation: the key frame at or before a moment, small, cached; nothing
    // recorded then is a 404 problem.
    const mid = (s) => new Date((Date.parse(s.started_at) + Date.parse(s.ended_at)) / 2).toISOString();
    const th = await api(`/cameras/${cam.id}/thumbnail.jpg?at=${encodeURIComponent(mid(segments[1]))}&width=160`);
    assert.equal(th.status, 200, await th.clone().text());
    assert.equal(th.headers.get('content-type'), 'image/jpeg');
    assert.match(th.headers.get('cache-control'), /max-age=\d+/);
    const frameAt = Date.parse(th.headers.get('x-frame-time'));
    assert.ok(frameAt >= Date.parse(segments[1].started_at) - 1000 && frameAt <= Date.parse(mid(segments[1])),
      `the key frame shown (${th.headers.get('x-frame-time')}) is at or before the moment`);
    const jpeg = Buffer.from(await th.arrayBuffer());
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
    const none = await api(`/cameras/${cam.id}/thumbnail.jpg?at=2020-01-01T00:00:00Z`);
    assert.equal(none.status, 404);
    assert.equal(none.headers.get('content-type'), 'application/problem+json');
    assert.match((await none.json()).detail, /nothing was recorded/);
    const tries = [];
    await poll('a thumbnail of the segment being recorded', async () => {
      const r = await api(`/cameras/${cam.id}/thumbnail.jpg?at=${encodeURIComponent(new Date(Date.now() - 300).toISOString())}`);
      tries.push(r.status === 200 ? 200 : `${r.status} ${(await r.json()).detail}`);
      return { done: r.status === 200, value: tries };
    }, 15_000).catch((e) => {
      throw new Error(`${e.message}\nserver log:\n${server.output.filter((l) => /thumbnail|segment|recorder/i.test(l)).slice(-30).join('\n')}`);
    });

    // Scrub: pointing at a recorded moment shows its picture; dragging moves the window and
    // keeps showing the moment under the pointer.
    const xOf = async (ms) => {
      const v = await view();
      const b = await track.boundingBox();
      return b.x + (ms - v.start) / (v.end - v.start) * b.width;
    };
    const target = Date.parse(mid(segments[2]));
    await page.mouse.move(await xOf(target) - 20, tb.y + tb.height / 2);
    await page.mouse.move(await xOf(target), tb.y + tb.height / 2, { steps: 4 });
    const preview = page.locator('#tl-preview-img');
    await page.waitForFunction(() => {
      const img = document.getElementById('tl-preview-img');
      return !img.hidden && img.complete && img.naturalWidth > 0 && /\/thumbnail\.jpg\?at=/.test(img.src);
    }).catch(async (e) => {
      const text = await page.locator('#tl-preview-text').textContent();
      throw new Error(`no thumbnail while scrubbing (${text}; ${e.message})\nserver log:\n` +
        server.output.filter((l) => /thumbnail/i.test(l)).slice(-20).join('\n'));
    });
    assert.equal(await preview.evaluate((img) => img.naturalWidth), 240, 'the preview is the 240-px thumbnail');
    assert.match(await page.locator('#tl-preview-text').textContent(), /Test yard, \d\d:\d\d:\d\d/);
    if (process.env.PV_ARTIFACTS) {
      await page.screenshot({ path: `${process.env.PV_ARTIFACTS}/ui-recordings-scrub.png` });
    }
    const before = await view();
    await page.mouse.down();
    await page.mouse.move(await xOf(target) - 200, tb.y + tb.height / 2, { steps: 8 });
    await page.mouse.up();
    const after = await view();
    assert.ok(after.start > before.start, 'dragging left moves the window later');
    assert.equal(after.end - after.start, before.end - before.start, 'dragging keeps the zoom');
    assert.equal(await page.locator('#tl-preview').isVisible(), true, 'the preview follows the drag');

    // Click → the player loads a segment (whole files for Media Source, or range requests).
    const media = page.waitForResponse((r) => r.url().includes('/api/v1/recordings/') && r.url().endsWith('/media'));
    const tb2 = await track.boundingBox();
    await page.mouse.click(await xOf(Date.parse(mid(segments[0]))), tb2.y + tb2.height / 2);
    const response = await media;
    assert.ok([200, 206].includes(response.status()), `media answered ${response.status()}`);
    assert.equal(response.headers()['content-type'], 'video/mp4');
    assert.equal(await page.locator('#player').isVisible(), true, 'the player is shown');
    assert.match(await page.locator('#player-caption').textContent(), /Test yard/);

    // --- Continuous playback: an event link (?camera=&date=&at=) opens the moment and plays
    // three consecutive segments (and on) with no stall over half a second.
    const playable = await page.evaluate(() => document.createElement('video').canPlayType('video/mp4; codecs="avc1.42E01E"'));
    if (playable) {
      const list = await poll('five segments back to back', async () => {
        const l = await (await api(`/recordings?camera_id=${cam.id}`)).json();
        return { done: l.length >= 6, value: l };
      }, 30_000);
      // Three consecutive segments (each starting where the previous ended).
      let k = 0;
      for (let i = list.length - 3; i >= 0; i--) {
        const joined = [0, 1].every((j) => Math.abs(Date.parse(list[i + j + 1].started_at) - Date.parse(list[i + j].ended_at)) < 500);
        if (joined) { k = i; break; }
      }
      const three = list.slice(k, k + 3);
      const from = Date.parse(three[0].started_at) + 200;
      const until = Date.parse(three[2].ended_at) - 300;
      const d = new Date(from);
      const date = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
      const fetchedIds = new Set();
      page.on('response', (r) => {
        const m = r.url().match(/\/api\/v1\/recordings\/(\d+)\/media/);
        if (m) fetchedIds.add(Number(m[1]));
      });
      await page.goto(`${server.base}/recordings?camera=${cam.id}&date=${date}&at=${encodeURIComponent(new Date(from).toISOString())}`,
        { waitUntil: 'load' });
      await page.waitForFunction(() => {
        const v = document.getElementById('player');
        return v && !v.paused && v.currentTime > 0 && v.readyState >= 3;
      }, null, { timeout: 15_000 });
      const run = await page.evaluate(async (until) => {
        const v = document.getElementById('player');
        const samples = [];
        let waiting = 0;
        v.addEventListener('waiting', () => { waiting++; });
        const t0 = performance.now();
        await new Promise((resolve) => {
          const timer = setInterval(() => {
            const wall = window.__pvRecordings.wall();
            samples.push({ at: performance.now(), t: v.currentTime, wall, paused: v.paused });
            if (wall >= until || performance.now() - t0 > 20_000) { clearInterval(timer); resolve(); }
          }, 50);
        });
        // The longest time the picture did not move while playing.
        let stall = 0, since = samples[0].at, last = samples[0].t;
        for (const s of samples) {
          if (s.t !== last || s.paused) { since = s.at; last = s.t; }
          stall = Math.max(stall, s.at - since);
        }
        return { stall, waiting, played: v.currentTime, wallEnd: samples[samples.length - 1].wall, ms: window.__pvRecordings.mse };
      }, until);
      t.diagnostic(`played ${run.played.toFixed(2)} s over three segments; longest stall ${Math.round(run.stall)} ms; ` +
        `${run.waiting} waiting events; Media Source: ${run.ms}`);
      assert.ok(run.wallEnd >= until, `playback reached the end of the third segment (${new Date(run.wallEnd).toISOString()})`);
      assert.ok(run.stall < 500, `no stall longer than 0.5 s (longest ${Math.round(run.stall)} ms)`);
      const advanced = (run.wallEnd - from) / 1000;
      assert.ok(Math.abs(run.played - 0.2 - advanced) < 0.5,
        `the media time (${run.played.toFixed(2)} s) follows the recorded time (${advanced.toFixed(2)} s): no holes between segments`);
      for (const s of three) assert.ok(fetchedIds.has(s.id), `segment ${s.id} was played`);
      assert.match(await page.locator('#player-caption').textContent(), /Test yard/);

      // Keys: K pauses and plays, J goes back 10 s; speeds up to 16x.
      await page.keyboard.press('k');
      await page.waitForFunction(() => document.getElementById('player').paused);
      const w1 = await page.evaluate(() => window.__pvRecordings.wall());
      await page.keyboard.press('j');
      await page.waitForFunction((w1) => window.__pvRecordings.wall() <= w1 - 5000, w1).catch(async (e) => {
        const state = await page.evaluate(() => window.__pvRecordings.session());
        throw new Error(`J did not go back 10 s from ${new Date(w1).toISOString()}: ${JSON.stringify(state)} ` +
          `${JSON.stringify(list.map((s) => [s.id, s.started_at, s.ended_at]))} (${e.message})`);
      });
      // I and O mark a range around the 10 s skipped back over: a download of exactly that.
      const wallNow = () => page.evaluate(() => window.__pvRecordings.wall());
      await page.keyboard.press('i');
      const marked = [await wallNow()];
      await page.keyboard.press('l');
      await page.keyboard.press('o');
      marked.push(await wallNow());
      const link = page.locator('#export-link');
      await link.waitFor();
      const href = new URL(await link.getAttribute('href'), server.base);
      assert.equal(href.pathname, `/api/v1/cameras/${cam.id}/export.mp4`);
      const range = [Date.parse(href.searchParams.get('from')), Date.parse(href.searchParams.get('to'))];
      assert.ok(Math.abs(range[0] - marked[0]) < 2 && Math.abs(range[1] - marked[1]) < 2 && range[1] > range[0],
        `the download covers the marked moments (${JSON.stringify(range)} vs ${JSON.stringify(marked)})`);
      const mp4 = await api(`${href.pathname.replace('/api/v1', '')}${href.search}`).catch((e) => {
        throw new Error(`the download did not answer: ${e.message}\nserver log:\n${server.output.slice(-40).join('\n')}`);
      });
      assert.equal(mp4.status, 200, await mp4.clone().text());
      assert.equal(mp4.headers.get('content-type'), 'video/mp4');
      assert.ok((await mp4.arrayBuffer()).byteLength > 10_000, 'the download holds the footage');
      await page.keyboard.press('k');
      await page.waitForFunction(() => !document.getElementById('player').paused);
      await page.locator('#speed').selectOption('16');
      await page.waitForFunction(() => document.getElementById('player').playbackRate === 16);
      if (process.env.PV_ARTIFACTS) {
        await page.screenshot({ path: `${process.env.PV_ARTIFACTS}/ui-recordings.png`, fullPage: true });
      }

      // Two cameras on one playhead: the second follows the first's wall-clock time.
      await page.locator('#speed').selectOption('1');
      await page.locator('#sync-box summary').click();
      for (const id of [cam.id, cam2.id]) await page.locator(`#sync-cameras input[value="${id}"]`).check();
      const list2 = await (await api(`/recordings?camera_id=${cam2.id}`)).json();
      assert.ok(list2.length >= 2, 'the second camera recorded too');
      const both = Date.parse(mid(list2[2]));
      for (let i = 0; i < 3; i++) await page.locator('#zoom-in').click(); // 5 minutes
      await page.locator('#zoom-label', { hasText: /^5 minutes$/ }).waitFor();
      const b2 = await track.boundingBox();
      await page.mouse.click(await xOf(both), b2.y + b2.height / 2);
      await page.waitForFunction(() => document.querySelectorAll('#player-grid video').length === 2);
      await page.waitForFunction(() => {
        const w = window.__pvRecordings.walls();
        return w.length === 2 && w.every((x) => x.playing && x.wall);
      }, null, { timeout: 15_000 }).catch(async (e) => {
        const state = await page.evaluate(() => [window.__pvRecordings.walls(), window.__pvRecordings.session(0), window.__pvRecordings.session(1)]);
        throw new Error(`two cameras do not play together: ${JSON.stringify(state)} at ${new Date(both).toISOString()} (${e.message})`);
      });
      let worst = 0;
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 200));
        const w = await page.evaluate(() => window.__pvRecordings.walls());
        worst = Math.max(worst, Math.abs(w[0].wall - w[1].wall));
      }
      t.diagnostic(`two cameras in sync: largest difference ${Math.round(worst)} ms`);
      assert.ok(worst < 700, `the second camera follows the first (off by up to ${Math.round(worst)} ms)`);
      if (process.env.PV_ARTIFACTS) {
        await page.screenshot({ path: `${process.env.PV_ARTIFACTS}/ui-recordings-sync.png`, fullPage: true });
      }
    } else {
      t.diagnostic('this Chromium build cannot decode H.264; the playback check stops at the media response');
    }

    // --- A 390-px phone: the page fits the width (no horizontal scroll).
    {
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true });
      await phone.setExtraHTTPHeaders({ Authorization: `Bearer ${token}` });
      const p = await phone.newPage();
      await p.goto(`${server.base}/recordings`, { waitUntil: 'load' });
      await p.locator(`.timeline[data-camera="${cam.id}"] .span`).first().waitFor({ state: 'attached' });
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (process.env.PV_ARTIFACTS) {
        await p.screenshot({ path: `${process.env.PV_ARTIFACTS}/ui-recordings-phone.png`, fullPage: true });
      }
      assert.ok(overflow <= 0, `no horizontal scroll at 390 px (${overflow} px too wide)`);
      await phone.close();
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
