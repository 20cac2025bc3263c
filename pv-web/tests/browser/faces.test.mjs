// Headless-Chromium test of face recognition in the UI, with the real face models: a person is
// enrolled on the Faces page (name, then two photos uploaded through the page), a simulated
// camera (the pv-media `testcam` example serving a photo of the same person, drifting so that
// motion detection fires) is added in motion mode, and the camera's live page draws a box named
// "Person A" over the video. The Faces page then lists the sightings, tries a photo, and opts
// the person out and deletes them from the page. Screenshots (desktop 1280×800 and a 390×844
// phone) go to PV_ARTIFACTS (default /tmp/pv/shots): faces-live-*.png, faces-page-*.png.
//
// Assets: photos in PV_FACE_IMAGES (default ~/.cache/pentavision/face-test-images, fetched by
// bins/face-test-images.sh), models in PV_FACE_MODELS (default ~/.cache/pentavision/models,
// fetched by `pentavision faces fetch-models`).
//
// Run:  PV_BIN=…/pentavision PV_TESTCAM=…/examples/testcam node --test faces.test.mjs

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  TEST_TIMEOUT_MS, startServer, stopServer, launchBrowser, cleanupAll, newPage, toastTexts, totpCode,
  poll, call, waitToast,
} from './harness.mjs';

after(cleanupAll, { timeout: 30_000 });

const PASSWORD = 'correct horse battery staple';
const SHOTS = process.env.PV_ARTIFACTS || '/tmp/pv/shots';
const IMAGES = process.env.PV_FACE_IMAGES || join(homedir(), '.cache/pentavision/face-test-images');
const MODELS = process.env.PV_FACE_MODELS || join(homedir(), '.cache/pentavision/models');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

/** The test's assets, or a failure that says how to fetch them. */
function assets() {
  const photos = ['obama.jpg', 'obama2.jpg'].map((f) => join(IMAGES, f));
  for (const p of photos) {
    assert.ok(existsSync(p), `missing test photo ${p}: fetch the photos with bins/face-test-images.sh `
      + '(or point PV_FACE_IMAGES at them)');
  }
  for (const m of ['face_detection_front_128x128_barracuda.onnx', 'fr_feature.onnx']) {
    assert.ok(existsSync(join(MODELS, m)), `missing face model ${join(MODELS, m)}: fetch the models with `
      + '`pentavision faces fetch-models` (or point PV_FACE_MODELS at them)');
  }
  return photos;
}

/** The testcam example serving a still picture (drifting sideways); { proc, url }. */
function startPictureCamera(path) {
  const bin = process.env.PV_TESTCAM;
  if (!bin) throw new Error('PV_TESTCAM is not set: point it at target/debug/examples/testcam');
  const proc = spawn(bin, ['picture', path], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('testcam printed no URL within 60 s')), 60_000);
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`testcam picture exited early (code ${code})`)));
    createInterface({ input: proc.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ proc, url: line.trim() });
    });
  });
}

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
}

async function shoot(page, name, size) {
  await page.setViewportSize(size);
  await page.waitForTimeout(400);
  const path = join(SHOTS, `${name}-${size.width}.png`);
  await page.screenshot({ path, fullPage: name === 'faces-page' });
  return path;
}

test('faces: enrol on the Faces page, see the name over live video, opt out and delete',
  { timeout: TEST_TIMEOUT_MS * 6 }, async (t) => {
    const photos = assets();
    await mkdir(SHOTS, { recursive: true });
    const camera = await startPictureCamera(photos[0]);
    const server = await startServer({ env: { PV_FACES__MODEL_DIR: MODELS } });
    let browser = null;
    t.after(async () => {
      if (browser) await browser.close().catch(() => {});
      await stopServer(server);
      camera.proc.stdin.end();
      camera.proc.kill('SIGTERM');
    });
    browser = await launchBrowser({ args: ['--autoplay-policy=no-user-gesture-required'] });
    const { page, problems } = await newPage(browser);
    await signIn(page, server);
    const serverLog = () => server.output.slice(-40).join('\n');

    // ---- The Faces page: on, empty; add Person A and two photos through the page ----
    await page.goto(`${server.base}/faces`, { waitUntil: 'load' });
    const status = await call(page, 'GET', '/api/v1/faces/status');
    assert.equal(status.status, 200, status.text);
    assert.equal(status.body.enabled, true, `face recognition is on with the models in ${MODELS}: ${status.text}`);
    assert.equal(await page.locator('#fc-off').isVisible(), false, 'no "face recognition is off" banner');
    await page.locator('#main-nav a[href="/faces"]').waitFor({ state: 'visible' });

    await page.locator('#fc-name').fill('Person A');
    await page.locator('#fc-add-form button[type=submit]').click();
    await waitToast(page, 'Person A added');
    const card = page.locator('.fc-person', { hasText: 'Person A' });
    await card.waitFor();
    await card.locator('input[type=file][data-upload]').setInputFiles(photos);
    await waitToast(page, '2 face images added to Person A', 60_000);
    await poll('two thumbnails of Person A', async () => {
      const n = await page.locator('.fc-person', { hasText: 'Person A' }).locator('.fc-thumb img').count();
      return { done: n === 2, value: n };
    }, 15_000);
    const person = (await call(page, 'GET', '/api/v1/faces/identities')).body.identities
      .find((p) => p.name === 'Person A');
    assert.ok(person, 'Person A is an identity');
    assert.equal(person.embeddings, 2, `two enrolled images: ${JSON.stringify(person)}`);
    // The crops are served (decrypted JPEGs).
    const crop = await page.locator('.fc-thumb img').first().evaluate((img) => img.complete && img.naturalWidth);
    assert.ok(crop > 0, 'the enrolled crop loads');

    // ---- A camera showing the same person; the live page names them ----
    const created = await call(page, 'POST', '/api/v1/cameras', {
      name: 'Front door', main_url: camera.url, recording_mode: 'motion',
    });
    assert.equal(created.status, 201, created.text);
    const cam = created.body;
    await poll('the camera streams', async () => {
      const c = await call(page, 'GET', `/api/v1/cameras/${cam.id}`);
      return { done: c.body?.status?.state === 'streaming', value: c.body?.status };
    }, 30_000);

    await page.goto(`${server.base}/cameras/${cam.id}/live`, { waitUntil: 'load' });
    const overlay = page.locator('#session-player canvas[data-layer=faces]');
    const seen = await poll('the live overlay names Person A', async () => {
      const faces = await overlay.getAttribute('data-faces').catch(() => null);
      return { done: /Person A/.test(faces || ''), value: faces };
    }, 90_000).catch(async (e) => {
      throw new Error(`${e.message}; toasts ${JSON.stringify(await toastTexts(page))}\nserver output:\n${serverLog()}`);
    });
    t.diagnostic(`overlay shows: ${seen}`);
    // The box lies on the picture: some opaque pixels drawn on the overlay.
    const drawn = await overlay.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    });
    assert.ok(drawn > 100, `the overlay draws a box (${drawn} pixels)`);
    const desktopLive = await shoot(page, 'faces-live', DESKTOP);
    await poll('the overlay still names Person A on a phone', async () => {
      const faces = await overlay.getAttribute('data-faces').catch(() => null);
      return { done: /Person A/.test(faces || ''), value: faces };
    }, 30_000);
    const phoneLive = await shoot(page, 'faces-live', PHONE);
    t.diagnostic(`screenshots: ${desktopLive} ${phoneLive}`);

    // ---- The Faces page lists the sightings; a photo can be tried ----
    await page.setViewportSize(DESKTOP);
    const events = await poll('stored face events of Person A', async () => {
      const r = await call(page, 'GET', `/api/v1/faces/events?camera_id=${cam.id}&identity_id=${person.id}`);
      return { done: (r.body?.events?.length || 0) > 0, value: r.body?.events?.length ?? r.text };
    }, 30_000);
    t.diagnostic(`${events} stored events of Person A`);
    // The recordings timeline marks the sightings (distinct from motion, named on hover).
    await page.goto(`${server.base}/recordings`, { waitUntil: 'load' });
    await page.locator(`.rec-track[data-camera="${cam.id}"] .rec-face`).first().waitFor();
    assert.match(await page.locator(`.rec-track[data-camera="${cam.id}"] .rec-face`).first().getAttribute('title'),
      /Person A/, 'a face mark names the person');
    assert.ok(await page.locator('.legend .swatch.face').isVisible(), 'the legend explains face marks');

    await page.goto(`${server.base}/faces`, { waitUntil: 'load' });
    const named = page.locator('#fc-named .fc-event', { hasText: 'Person A' });
    await named.first().waitFor();
    assert.match(await named.first().textContent(), /Front door/, 'the sighting names the camera');
    assert.ok(await named.first().locator('button', { hasText: 'Not Person A' }).isVisible(),
      'a sighting can be corrected');

    await page.locator('#fc-try-file').setInputFiles(photos[1]);
    await poll('the tried photo is recognised', async () => {
      const text = await page.locator('#fc-try-result').textContent();
      return { done: /Person A/.test(text), value: text };
    }, 30_000);
    assert.match(await page.locator('#fc-try-canvas').getAttribute('data-faces'), /Person A/,
      'the tried photo has a box named Person A');
    await shoot(page, 'faces-page', DESKTOP);
    await shoot(page, 'faces-page', PHONE);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no sideways scrolling on a phone (${overflow} px too wide)`);
    await page.setViewportSize(DESKTOP);

    // ---- Opt-out from the page ----
    const optOut = page.locator(`#fc-optout-${person.id}`);
    await optOut.check();
    await waitToast(page, 'Person A is opted out');
    let after = await call(page, 'GET', `/api/v1/faces/identities/${person.id}`);
    assert.equal(after.body.opt_out, true, `opted out: ${after.text}`);
    await page.locator('.fc-person', { hasText: 'Person A' }).locator('.badge', { hasText: 'Opted out' }).waitFor();

    // ---- Delete from the page: the dialog says what goes ----
    await page.locator('.fc-person', { hasText: 'Person A' }).locator('button', { hasText: 'Delete person' }).click();
    const dialog = page.locator('#fc-confirm');
    await dialog.waitFor({ state: 'visible' });
    assert.match(await dialog.textContent(), /Everything biometric about Person A is deleted/);
    await page.locator('#fc-confirm-yes').click();
    await waitToast(page, 'Person A and all their face data were deleted');
    after = await call(page, 'GET', '/api/v1/faces/identities');
    assert.equal(after.body.identities.length, 0, `nobody left: ${after.text}`);
    await page.locator('#fc-people .hint', { hasText: 'Nobody yet' }).waitFor();
    const gone = await call(page, 'GET', `/api/v1/faces/events?identity_id=${person.id}`);
    assert.equal(gone.body?.events?.length ?? 0, 0, `past events no longer name them: ${gone.text}`);

    assert.deepEqual(problems([/Failed to load resource/]), [], 'no console errors');
  });
