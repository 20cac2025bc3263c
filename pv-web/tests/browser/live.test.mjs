// Headless-Chromium test of live view: a simulated RTSP camera (the pv-media `testcam` example)
// is added through the REST API from a signed-in browser session (setup code → password +
// authenticator app, so the page's cookie and CSRF tokens are the real ones); the /live tile
// plays it over WebRTC (WHEP), and, with the server's ICE candidates rewritten to an
// unreachable TEST-NET address so that ICE genuinely fails, the same tile falls back to fMP4
// over a WebSocket into Media Source and plays too. Screenshots of /live and the camera page
// (desktop 1280×800 and a 390×844 phone) go to PV_ARTIFACTS (default /tmp/pv/shots).
//
// Run:  PV_BIN=…/pentavision PV_TESTCAM=…/examples/testcam node --test live.test.mjs

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import {
  TEST_TIMEOUT_MS, startServer, stopServer, launchBrowser, cleanupAll, newPage, toastTexts, totpCode,
  startCamera, poll, call,
} from './harness.mjs';

after(cleanupAll, { timeout: 30_000 });

const PASSWORD = 'correct horse battery staple';
const SHOTS = process.env.PV_ARTIFACTS || '/tmp/pv/shots';
const UNREACHABLE = '192.0.2.1'; // TEST-NET-1: nothing answers ICE checks there

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

/** The tile's player state, for waits and failure messages. */
const playerState = (tile) => tile.locator('.player').evaluate((p) => ({
  protocol: p.dataset.protocol || null,
  state: p.dataset.state || null,
  message: p.querySelector('.player-message')?.textContent || '',
  badge: p.querySelector('.player-badge')?.textContent || '',
  stats: p.pvPlayer ? p.pvPlayer.stats() : null,
  currentTime: p.querySelector('video')?.currentTime,
}));

async function waitPlaying(page, tile, protocol, timeoutMs, server) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    last = await playerState(tile);
    if (last.protocol === protocol && last.state === 'playing') return last;
    await page.waitForTimeout(250);
  }
  throw new Error(`the tile did not play over ${protocol} within ${timeoutMs} ms: ${JSON.stringify(last)}; `
    + `toasts ${JSON.stringify(await toastTexts(page))}\nserver output:\n${server.output.slice(-40).join('\n')}`);
}

/** The picture moves and bytes arrive: currentTime and bytesReceived grow over 2 s. */
async function assertAdvancing(page, tile, protocol) {
  const sample = () => tile.locator('.player').evaluate((p) => ({
    t: p.querySelector('video').currentTime,
    bytes: p.pvPlayer.stats().bytesReceived,
    protocol: p.pvPlayer.protocol,
    frames: p.querySelector('video').getVideoPlaybackQuality?.().totalVideoFrames ?? null,
  }));
  const a = await sample();
  await page.waitForTimeout(2000);
  const b = await sample();
  assert.equal(b.protocol, protocol, `still on ${protocol}`);
  assert.ok(b.t - a.t > 1, `${protocol}: video.currentTime advances over 2 s (${a.t} → ${b.t})`);
  assert.ok(b.bytes > a.bytes, `${protocol}: stats().bytesReceived grows (${a.bytes} → ${b.bytes})`);
  return { a, b };
}

test('live view plays over WebRTC, and falls back to Media Source when ICE cannot connect',
  { timeout: TEST_TIMEOUT_MS * 5 }, async (t) => {
    await mkdir(SHOTS, { recursive: true });
    const camera = await startCamera();
    const server = await startServer();
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
      camera.proc.stdin.end();
      camera.proc.kill('SIGTERM');
    });
    browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
    const { context, page, problems } = await newPage(browser);
    await signIn(page, server);

    // What this browser offers; a Chromium update that changes it shows up here.
    const caps = await page.evaluate(() => ({
      webrtcVideo: RTCRtpReceiver.getCapabilities('video').codecs
        .map((c) => `${c.mimeType}${c.sdpFmtpLine ? ` ${c.sdpFmtpLine}` : ''}`),
      mseHigh: MediaSource.isTypeSupported('video/mp4; codecs="avc1.640028"'),
    }));
    t.diagnostic(`RTCRtpReceiver video codecs: ${JSON.stringify(caps.webrtcVideo)}`);
    t.diagnostic(`MediaSource.isTypeSupported('video/mp4; codecs="avc1.640028"'): ${caps.mseHigh}`);

    const created = await call(page, 'POST', '/api/v1/cameras', { name: 'Test yard', main_url: camera.url });
    assert.equal(created.status, 201, created.text);
    const cam = created.body;
    // A zone and a mask to draw on the camera page (set now: a change restarts the recorder).
    const zones = await call(page, 'PUT', `/api/v1/cameras/${cam.id}/motion-zones`, {
      zones: [
        { name: 'Driveway', polygon: [[0.05, 0.35], [0.55, 0.3], [0.6, 0.95], [0.1, 0.95]], sensitivity: 0.6 },
        { name: 'Street', polygon: [[0.65, 0.05], [0.98, 0.05], [0.98, 0.4], [0.65, 0.4]], mask: true },
      ],
    });
    assert.equal(zones.status, 200, `motion zones: ${zones.text}`);
    await poll('the camera streams', async () => {
      const c = await call(page, 'GET', `/api/v1/cameras/${cam.id}`);
      return { done: c.body?.status?.state === 'streaming', value: c.body?.status };
    }, 30_000);

    const tile = page.locator(`.live-tile[data-camera="${cam.id}"]`);

    await t.test('WebRTC: the /live tile plays the camera', async () => {
      await page.goto(`${server.base}/live`, { waitUntil: 'load' });
      await tile.waitFor();
      assert.match(await tile.locator('.tile-name').textContent(), /Test yard/);
      assert.equal(await tile.locator('[data-field=status]').textContent(), 'Streaming');
      assert.equal(await tile.locator('[data-field=recording]').isVisible(), true, 'the recording dot shows');
      assert.equal(await tile.locator('[data-motion]').isVisible(), false, 'no motion flag by default');
      assert.equal(await tile.locator('a', { hasText: 'Start session' }).getAttribute('href'), `/cameras/${cam.id}/live`);
      assert.equal(await page.locator('nav.nav a').first().textContent(), 'Live', 'Live is first in the menu');

      const playing = await waitPlaying(page, tile, 'WebRTC', 30_000, server);
      t.diagnostic(`WebRTC playing: ${JSON.stringify(playing)}`);
      const { b } = await assertAdvancing(page, tile, 'WebRTC');
      assert.ok(b.frames === null || b.frames > 0, `frames were decoded (${b.frames})`);
      await page.waitForTimeout(1200); // a stats tick with a bit rate
      const badge = await tile.locator('.player-badge').textContent();
      assert.match(badge, /^WebRTC · \d+ ms · [\d.]+ [kM]b\/s$/, `the badge shows protocol, delay and rate: ${badge}`);
      assert.equal(await tile.locator('canvas.overlay[data-layer=faces]').count(), 1, 'an empty face layer');

      // Layout: remembered in this browser; the tile (and its player) stays.
      await page.locator('#grid-size').selectOption('3');
      assert.equal(await page.evaluate(() => localStorage.getItem('pv.live.layout')), '3');
      assert.match(await page.locator('#live-grid').getAttribute('class'), /cols-3/);
      await page.locator('#grid-size').selectOption('2');
      // Keyboard: the tile takes focus; Enter would open the camera page.
      await tile.focus();
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.camera), String(cam.id));

      await page.screenshot({ path: `${SHOTS}/live-desktop.png` });

      // The camera page: main stream, zones drawn on request, recent motion, RTMP controls.
      await page.goto(`${server.base}/cameras/${cam.id}/live`, { waitUntil: 'load' });
      assert.equal(await page.locator('h1').textContent(), 'Test yard');
      const session = page.locator('.session-player');
      await waitPlaying(page, session, 'WebRTC', 30_000, server);
      await page.locator('#zones-toggle').check();
      const zoneCanvas = page.locator('canvas.overlay[data-layer=zones]');
      await zoneCanvas.waitFor({ state: 'visible' });
      const painted = await poll('the motion zones are drawn', async () => {
        const n = await zoneCanvas.evaluate((c) => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let count = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) count++;
          return count;
        });
        return { done: n > 1000, value: n };
      }, 5_000);
      t.diagnostic(`motion zones: ${painted} pixels drawn`);
      await page.locator('#event-list li').first().waitFor();
      assert.doesNotMatch(await page.locator('#event-list').textContent(), /Loading/);
      assert.match(await page.locator('#rtmp-state').textContent(), /Not streaming anywhere\./);
      await page.waitForTimeout(1200);
      await page.screenshot({ path: `${SHOTS}/camera-live-desktop.png`, fullPage: true });

      // A 390-pixel phone, same session.
      const phone = await browser.newContext({
        viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
        storageState: await context.storageState(),
      });
      const p2 = await phone.newPage();
      await p2.goto(`${server.base}/live`, { waitUntil: 'load' });
      const phoneTile = p2.locator(`.live-tile[data-camera="${cam.id}"]`);
      await waitPlaying(p2, phoneTile, 'WebRTC', 30_000, server);
      const cols = await p2.locator('#live-grid').evaluate((g) => getComputedStyle(g).gridTemplateColumns.split(' ').length);
      assert.equal(cols, 1, 'one column on a phone');
      const box = await phoneTile.boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 390, `the tile fits the phone's width: ${JSON.stringify(box)}`);
      await p2.waitForTimeout(1200);
      await p2.screenshot({ path: `${SHOTS}/live-phone.png` });
      await p2.goto(`${server.base}/cameras/${cam.id}/live`, { waitUntil: 'load' });
      await waitPlaying(p2, p2.locator('.session-player'), 'WebRTC', 30_000, server);
      await p2.waitForTimeout(1200);
      await p2.screenshot({ path: `${SHOTS}/camera-live-phone.png`, fullPage: true });
      await phone.close();
    });

    await t.test('MSE: with ICE unreachable the same tile falls back and plays', async () => {
      // Every ICE candidate either side names becomes an unreachable address: the server's in
      // the answer, the browser's in the offer and in trickled PATCHes (a full-ICE server could
      // otherwise reach the browser itself).
      let rewritten = 0;
      let answers = 0;
      const unreachable = (sdp, count) => sdp.replace(/^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ )/gm,
        (m, a, addr, b) => { if (count) rewritten++; return `${a}${UNREACHABLE}${b}`; });
      const forward = async (route, transform) => {
        const request = route.request();
        const postData = request.postData();
        const response = await route.fetch(postData ? { postData: unreachable(postData, false) } : {});
        const headers = { ...response.headers() };
        for (const h of ['content-length', 'content-encoding', 'transfer-encoding']) delete headers[h];
        await route.fulfill({ status: response.status(), headers, body: transform(await response.text()) });
      };
      await page.route('**/whep*', (route) => forward(route, (body) => { answers++; return unreachable(body, true); }));
      await page.route('**/whep/*', (route) => (route.request().method() === 'PATCH'
        ? forward(route, (body) => body) : route.fallback()));
      await page.goto(`${server.base}/live`, { waitUntil: 'load' });
      await tile.waitFor();
      const playing = await waitPlaying(page, tile, 'MSE', 40_000, server);
      t.diagnostic(`MSE playing: ${JSON.stringify(playing)}`);
      assert.ok(answers >= 1, 'the page asked for WebRTC first');
      assert.ok(rewritten >= 1, `the WHEP answer carried ICE candidates, all rewritten (${rewritten})`);
      await assertAdvancing(page, tile, 'MSE');
      await page.waitForTimeout(1200);
      const stats = await tile.locator('.player').evaluate((p) => p.pvPlayer.stats());
      t.diagnostic(`MSE stats: ${JSON.stringify(stats)}`);
      assert.ok(stats.latencyMs !== null && stats.latencyMs < 5000, `the delay stays near the live edge (${stats.latencyMs} ms)`);
      assert.match(await tile.locator('.player-badge').textContent(), /^MSE · \d+ ms · [\d.]+ [kM]b\/s$/);
      await page.screenshot({ path: `${SHOTS}/live-desktop-mse.png` });
      await page.unroute('**/whep*');
      await page.unroute('**/whep/*');
    });

    assert.deepEqual(await page.evaluate(() => window.__pv.csp), [], 'no CSP violations');
    assert.deepEqual(problems(), [], 'no console errors');
  });
