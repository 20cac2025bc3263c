// Glass-to-glass latency of live view in headless Chromium, WebRTC and MSE side by side.
//
// A simulated camera (`testcam clock`) paints the wall-clock time (ms) into every frame as a
// barcode when it makes the frame, encodes it live and serves it over RTSP; PentaVision records
// it and the camera page plays it. In the page, `requestVideoFrameCallback` reads the barcode
// of each presented frame from a canvas and compares it with the time it was presented (same
// machine, same clock). Prints p50/p90/max per protocol; asserts nothing about the figures (they
// belong here, not in a timed test).
//
// Run:  PV_BIN=…/pentavision PV_TESTCAM=…/examples/testcam node glass.bench.mjs [seconds]

import { startServer, launchBrowser, cleanupAll, newPage, totpCode, startCamera, call } from './harness.mjs';

const SECONDS = Number(process.argv[2] || 15);
const PASSWORD = 'correct horse battery staple';
const BITS = 40;
const BIT_WIDTH = 16;
const BAND_HEIGHT = 48;

/** Collect (presented − stamped) in ms for `seconds` from the page's video. */
async function measure(page, seconds) {
  return page.evaluate(async ({ seconds, BITS, BIT_WIDTH, BAND_HEIGHT }) => {
    const video = document.querySelector('.player video');
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const delays = [];
    const modulo = 2 ** BITS;
    await new Promise((done) => {
      const end = performance.now() + seconds * 1000;
      const onFrame = (now, meta) => {
        if (video.videoWidth >= BITS * BIT_WIDTH) {
          canvas.width = video.videoWidth;
          canvas.height = BAND_HEIGHT;
          ctx.drawImage(video, 0, 0, video.videoWidth, BAND_HEIGHT, 0, 0, video.videoWidth, BAND_HEIGHT);
          const row = ctx.getImageData(0, BAND_HEIGHT >> 1, canvas.width, 1).data;
          let stamp = 0;
          for (let bit = 0; bit < BITS; bit++) {
            const x = bit * BIT_WIDTH + (BIT_WIDTH >> 1);
            stamp = stamp * 2 + (row[x * 4] > 128 ? 1 : 0);
          }
          // `now` is when the frame is presented, on the performance clock.
          const presented = performance.timeOrigin + meta.expectedDisplayTime;
          const delay = ((presented % modulo) - stamp + modulo) % modulo;
          if (delay < 30_000) delays.push(delay);
        }
        if (performance.now() < end) video.requestVideoFrameCallback(onFrame);
        else done();
      };
      video.requestVideoFrameCallback(onFrame);
    });
    return delays;
  }, { seconds, BITS, BIT_WIDTH, BAND_HEIGHT });
}

function summary(name, delays) {
  const s = [...delays].sort((a, b) => a - b);
  const p = (q) => (s.length ? s[Math.min(s.length - 1, Math.round((s.length - 1) * q))].toFixed(0) : 'n/a');
  console.log(`| ${name} | ${s.length} | ${p(0.5)} | ${p(0.9)} | ${p(1)} |`);
}

async function waitProtocol(page, protocol) {
  await page.waitForFunction((protocol) => {
    const p = document.querySelector('.player');
    return p?.dataset.protocol === protocol && p?.dataset.state === 'playing';
  }, protocol, { timeout: 60_000 });
}

async function main() {
  const cam = await startCamera('clock');
  const server = await startServer({ env: { PV_LIVE__UDP_PORT: '0' } });
  const browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
  try {
    const { page } = await newPage(browser);
    await page.goto(`${server.base}/login`, { waitUntil: 'load' });
    await call(page, 'POST', '/api/v1/auth/login', { username: 'Thalia', password: server.setupCode });
    await call(page, 'POST', '/api/v1/auth/password', { new_password: PASSWORD });
    const start = await call(page, 'POST', '/api/v1/auth/totp/start');
    await call(page, 'POST', '/api/v1/auth/totp/confirm', { code: totpCode(start.body.secret) });
    const created = await call(page, 'POST', '/api/v1/cameras', { name: 'Clock', main_url: cam.url });
    const id = created.body.id;
    console.log(`glass to glass, ${SECONDS} s per protocol, camera ${cam.url}`);
    console.log('| protocol | frames | p50 ms | p90 ms | max ms |');
    console.log('|---|---|---|---|---|');

    await page.goto(`${server.base}/cameras/${id}/live`, { waitUntil: 'load' });
    await waitProtocol(page, 'WebRTC');
    await page.waitForTimeout(2000);
    summary('WebRTC', await measure(page, SECONDS));

    // MSE: make ICE fail (candidates rewritten to an unreachable address) so the player falls back.
    await page.route('**/whep*', async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace(/^(a=candidate:\S+ \d+ \S+ \d+ )\S+/gm, '$1192.0.2.1');
      await route.fulfill({ response, body });
    });
    await page.reload({ waitUntil: 'load' });
    await waitProtocol(page, 'MSE');
    await page.waitForTimeout(3000);
    summary('MSE', await measure(page, SECONDS));
  } finally {
    cam.proc.stdin.end();
    await cleanupAll();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
