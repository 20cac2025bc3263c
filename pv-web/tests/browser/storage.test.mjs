// Headless-Chromium test of the Storage Modules Manager (/storage) against a real S3 server
// (`rclone serve s3`, SigV4 enforced, objects stored as plain files) and a simulated camera: an
// administrator adds an S3-compatible module through the Add Storage Provider wizard — first with
// a wrong secret (the test fails with a readable message and the wizard cannot go on to Save),
// then with the right one (the test passes, Save is possible) — and saves it. The recorder's
// finished segments then appear in the bucket on disk, the Overview tab shows the last write,
// and the Streams and Logs tabs list the uploads. The camera editor's Storage section sets the
// camera's targets. Screenshots (desktop 1440×900 and phone 390×844) of the list with the
// Overview, the wizard and the Logs tab go to PV_ARTIFACTS (default /tmp/shots); with
// PV_UPDATE_REFERENCE=1 the desktop Overview also replaces
// docs/ui-references/storage-modules-manager-reference.png.
//
// Run:  PV_BIN=…/pentavision PV_TESTCAM=…/examples/testcam node --test storage.test.mjs
// Env:  PV_RCLONE  rclone ≥ 1.65 with `serve s3` (default: the one bins/storage-servers.sh
//                  installs in ~/.cache/pentavision/venv-storage/bin/rclone)

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  TEST_TIMEOUT_MS, startServer, launchBrowser, cleanupAll, newPage, totpCode, startCamera, poll, call,
  waitToast, toastTexts,
} from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const SHOTS = process.env.PV_ARTIFACTS || '/tmp/shots';
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const REFERENCE = join(REPO, 'docs', 'ui-references', 'storage-modules-manager-reference.png');
const ACCESS_KEY = 'pvbrowseraccess';
const SECRET_KEY = 'pvbrowsersecret0123456789';
const BUCKET = 'cams';

let s3 = null;
let camera = null;
const scratch = [];
after(async () => {
  if (s3 && s3.proc.exitCode === null) s3.proc.kill('SIGTERM');
  if (camera) camera.proc.stdin.end();
  await cleanupAll();
  if (s3) await rm(s3.dir, { recursive: true, force: true });
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
}, { timeout: 30_000 });

/** A free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** `rclone serve s3` on a fresh directory with one bucket; resolves once it accepts requests. */
async function startS3() {
  const bin = process.env.PV_RCLONE || join(homedir(), '.cache/pentavision/venv-storage/bin/rclone');
  if (!existsSync(bin)) {
    throw new Error(`no rclone at ${bin}: run \`bash bins/storage-servers.sh install\` or set PV_RCLONE`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'pv-ui-s3-'));
  await mkdir(join(dir, BUCKET));
  const port = await freePort();
  const proc = spawn(bin, ['serve', 's3', dir, '--addr', `127.0.0.1:${port}`, '--config', '/dev/null',
    '--auth-key', `${ACCESS_KEY},${SECRET_KEY}`, '--etag-hash', 'MD5', '--log-level', 'NOTICE'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  proc.stderr.on('data', (d) => { log.push(String(d)); if (log.length > 50) log.shift(); });
  const endpoint = `http://127.0.0.1:${port}`;
  await poll('the S3 server answers', async () => {
    if (proc.exitCode !== null) throw new Error(`rclone serve s3 exited: ${log.join('')}`);
    const r = await fetch(endpoint).catch(() => null);
    return { done: !!r, value: r && r.status };
  }, 20_000);
  return { proc, dir, endpoint, log };
}

/** Files under `dir` (relative paths), recursively. */
async function filesUnder(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath ?? e.path, e.name)));
  }
  return out;
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

/** Dismiss every toast (so none covers what a phone screenshot or a click needs). */
async function clearToasts(page) {
  await page.evaluate(() => document.querySelectorAll('#toasts .toast').forEach((t) => t.remove()));
}

/** The wizard's fields for the S3-compatible provider. */
async function fillS3(page, endpoint, secret) {
  const modal = page.locator('#st-modal');
  await modal.locator('[name="config.endpoint"]').fill(endpoint);
  const region = modal.locator('[name="config.region"]');
  if (await region.count()) await region.fill('us-east-1');
  await modal.locator('[name="config.bucket"]').fill(BUCKET);
  await modal.locator('[data-field="access_key_id"]').fill(ACCESS_KEY);
  await modal.locator('[data-field="secret_access_key"]').fill(secret);
}

/** Run the wizard's connection test; resolves with the result box's text. */
async function runTest(page) {
  const box = page.locator('#st-wizard-step .st-test');
  await page.locator('#st-wizard-step [data-action=test]').click();
  await page.locator('#st-wizard-step [data-action=test]:not([aria-busy])').waitFor({ timeout: 60_000 });
  await box.waitFor({ state: 'visible' });
  return box.innerText();
}

test('an S3 module is added through the wizard after a failed and a passing test, and receives the segments',
  { timeout: TEST_TIMEOUT_MS * 6 }, async () => {
    await mkdir(SHOTS, { recursive: true });
    s3 = await startS3();
    camera = await startCamera('moving');
    const server = await startServer({ env: { PV_RECORDING__SEGMENT_SECONDS: '2' } });
    const browser = await launchBrowser();
    const { context, page, problems } = await newPage(browser);
    await page.setViewportSize({ width: 1440, height: 900 });
    await signIn(page, server);
    const cam = await call(page, 'POST', '/api/v1/cameras', { name: 'Porch', main_url: camera.url, recording_mode: 'continuous' });
    assert.equal(cam.status, 201, `camera added: ${cam.text}`);

    // The page, empty.
    await page.goto(`${server.base}/storage`, { waitUntil: 'load' });
    await page.locator('#st-list .st-empty').waitFor();
    await page.locator('[data-sb=storage]', { hasText: /no module enabled/i }).waitFor();

    // The wizard: choose the provider by searching.
    await page.click('[data-action=storage-add]');
    await page.locator('.st-provider-search').fill('minio');
    const card = page.locator('[data-provider="s3-compatible"]');
    await card.waitFor();
    assert.equal(await page.locator('.st-provider').count(), 1, 'the search narrows the providers');
    await page.locator('.st-provider-search').fill('');
    assert.ok(await page.locator('.st-provider').count() >= 20, 'every provider is offered');
    assert.deepEqual(await page.locator('.st-provider-group h4').allTextContents(),
      ['Object storage', 'Cloud drives', 'Network protocols', 'Local and on-premises'], 'providers are grouped by category');
    await page.screenshot({ path: join(SHOTS, 'storage-desktop-wizard.png') });
    await card.click();

    // Wrong secret: the test fails with a message for people, and there is no way on to Save.
    await fillS3(page, s3.endpoint, 'not-the-secret-key-0000');
    await page.click('#wz-next');
    const failed = await runTest(page);
    assert.match(failed, /Test failed/, `the test fails: ${failed}`);
    const why = await page.locator('#st-wizard-step .st-step-msg').first().innerText();
    assert.ok(why.length > 10, `a reason is given: ${failed}`);
    assert.doesNotMatch(why, /[{}]|::|Error\(|Some\(|\bNone\b/, `the reason is words, not internals: ${why}`);
    assert.equal(await page.isDisabled('#wz-next'), true, 'no way on to Save after a failed test');
    await waitToast(page, 'Connection test failed');
    await page.screenshot({ path: join(SHOTS, 'storage-desktop-wizard-failed.png') });

    // The right secret: typed values are kept (no reload), the test passes, Save becomes possible.
    await page.click('[data-action=wizard-back]');
    assert.equal(await page.locator('#st-modal [name="config.bucket"]').inputValue(), BUCKET, 'typed values are kept');
    await page.locator('#st-modal [data-field="secret_access_key"]').fill(SECRET_KEY);
    await page.click('#wz-next');
    assert.equal(await page.isDisabled('#wz-next'), true, 'changed values need a new test');
    const passed = await runTest(page);
    assert.match(passed, /Test passed/, `the test passes: ${passed}`);
    for (const step of ['connect', 'write', 'read', 'compare', 'delete']) {
      assert.equal(await page.locator(`#st-wizard-step [data-step=${step}] .st-step-ok`).count(), 1, `step ${step} passed: ${passed}`);
    }
    assert.equal(await page.isDisabled('#wz-next'), false, 'a passing test opens the way to Save');
    await page.click('#wz-next');
    await page.locator('#wz-name').fill('Off-site S3');
    await page.locator('#wz-tags').fill('off-site, test');
    await page.click('#wz-next');
    assert.match(await page.locator('#st-wizard-step').innerText(), /Passed in \d+ ms/);
    assert.equal(await page.locator('#wz-next').innerText(), 'Save and enable');
    await page.click('#wz-next');
    await waitToast(page, 'Storage module Off-site S3 saved and enabled.');
    await page.locator('#st-modal').waitFor({ state: 'hidden' });

    const modules = await call(page, 'GET', '/api/v1/storage/modules');
    assert.equal(modules.status, 200, modules.text);
    const mod = modules.body.find((m) => m.name === 'Off-site S3');
    assert.ok(mod, `the module is listed: ${modules.text}`);
    assert.equal(mod.enabled, true);
    assert.deepEqual(mod.tags, ['off-site', 'test']);
    assert.ok(!modules.text.includes(SECRET_KEY), 'the secret is never sent back');
    assert.ok(mod.secrets_set.includes('secret_access_key'), `the secret is stored: ${modules.text}`);

    // The recorder's finished segments arrive in the bucket (files on the S3 server's disk).
    const bucketDir = join(s3.dir, BUCKET);
    const objects = await poll('segments appear in the bucket', async () => {
      const files = (await filesUnder(bucketDir)).filter((f) => f.endsWith('.mp4') && !f.startsWith('.pentavision-test'));
      return { done: files.length >= 2, value: files };
    }, 120_000);
    assert.ok(objects.every((f) => f.includes('Porch')), `keys follow the template with the camera name: ${objects}`);
    const leftovers = (await filesUnder(bucketDir)).filter((f) => f.includes('.pentavision-test/') && f.endsWith('.bin'));
    assert.deepEqual(leftovers, [], 'the connection test cleaned up after itself');

    // A second module behind it in the failover order (added through the API, Test → Save).
    const standbyDir = await mkdtemp(join(tmpdir(), 'pv-ui-standby-'));
    const local = { provider: 'local-path', config: { root: standbyDir }, secrets: {} };
    const tested = await call(page, 'POST', '/api/v1/storage/modules/test', local);
    assert.equal(tested.body?.ok, true, `the local path passes its test: ${tested.text}`);
    const standby = await call(page, 'POST', '/api/v1/storage/modules',
      { ...local, name: 'Local standby', proof: tested.body.proof, priority: 20, tags: ['standby'] });
    assert.equal(standby.status, 201, standby.text);
    scratch.push(standbyDir);
    await page.reload({ waitUntil: 'load' });
    await page.locator('.st-card').nth(1).waitFor();
    assert.deepEqual(await page.locator('.st-card .st-card-name').allInnerTexts(), ['Off-site S3', 'Local standby'],
      'the list is in failover order');

    // Overview shows the last write (it refreshes on its own; the tab re-reads it too).
    const card1 = page.locator(`.st-card[data-module="${mod.id}"]`);
    await card1.locator('.st-card-main').click();
    const lastWrite = page.locator('#st-panel-overview [data-field=last-write]');
    await poll('the Overview shows a last write', async () => {
      await page.click('#st-tab-overview');
      await page.waitForTimeout(400);
      const text = await lastWrite.innerText().catch(() => '');
      return { done: /ago|just now/.test(text) && !/Nothing written yet/.test(text), value: text };
    }, 30_000);
    assert.match(await lastWrite.locator('time').getAttribute('title'), /\d{4}/, 'the full time is in the title');
    await poll('the card shows the status in words and the last write', async () => {
      const t = await page.locator(`.st-card[data-module="${mod.id}"]`).innerText();
      return { done: /Healthy/.test(t) && /Last write (\d+ min ago|just now)/.test(t), value: t };
    }, 15_000);
    await poll('the status bar counts the module', async () => {
      const t = await page.locator('[data-sb=storage]').innerText();
      return { done: /Storage OK/.test(t), value: t };
    }, 30_000);
    await clearToasts(page);
    await page.screenshot({ path: join(SHOTS, 'storage-desktop-overview.png') });
    if (process.env.PV_UPDATE_REFERENCE) await copyFile(join(SHOTS, 'storage-desktop-overview.png'), REFERENCE);

    // Configuration: Save stays disabled until a test passes for the values shown.
    await page.click('#st-tab-config');
    await page.locator('#st-panel-config [data-action=save]').waitFor();
    assert.equal(await page.isDisabled('#st-panel-config [data-action=save]'), true, 'no Save without a test');
    assert.equal(await page.locator('#st-panel-config [data-field="secret_access_key"]').getAttribute('placeholder'),
      'Stored — leave blank to keep');

    // Streams and Logs list the uploads.
    await page.click('#st-tab-streams');
    await page.locator('#st-panel-streams tbody tr .badge').first().waitFor();
    assert.match(await page.locator('#st-panel-streams').innerText(), /Completed|Writing|Waiting/);
    await page.click('#st-tab-logs');
    await poll('the Logs tab lists uploads', async () => {
      const n = await page.locator('#st-log-list li[data-level]').count();
      if (!n) await page.locator('#st-log-q').dispatchEvent('input');
      return { done: n > 0, value: n };
    }, 20_000);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-action=logs-csv]')]);
    assert.match(download.suggestedFilename(), /\.csv$/);
    await clearToasts(page);
    await page.screenshot({ path: join(SHOTS, 'storage-desktop-logs.png') });

    // The overflow menu, by keyboard: disable the standby module (nothing queued for it: a plain
    // confirmation), clone it, then delete the copy.
    const standbyCard = page.locator(`.st-card[data-module="${standby.body.id}"]`);
    await standbyCard.locator('.st-menu-btn').focus();
    await page.keyboard.press('Enter');
    await page.locator(`#st-menu-${standby.body.id} [role=menuitem]`, { hasText: 'Disable' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Disable', 'the menu opens on its first item');
    await page.keyboard.press('Enter');
    await page.locator('#st-modal-title', { hasText: 'Disable Local standby?' }).waitFor();
    await page.locator('#st-modal-body button', { hasText: /^Disable$/ }).click();
    await waitToast(page, 'Local standby disabled.');
    await poll('the standby module is disabled', async () => {
      const m = (await call(page, 'GET', `/api/v1/storage/modules/${standby.body.id}`)).body;
      return { done: m.enabled === false && m.status === 'disabled', value: m };
    }, 10_000);
    await page.locator(`.st-card[data-module="${standby.body.id}"] .st-menu-btn`).click();
    await page.locator(`#st-menu-${standby.body.id} [role=menuitem]`, { hasText: 'Clone' }).click();
    await waitToast(page, 'Copied as Local standby (copy)');
    const copy = (await call(page, 'GET', '/api/v1/storage/modules')).body.find((m) => m.name === 'Local standby (copy)');
    assert.ok(copy && copy.enabled === false, 'the copy is disabled');
    await page.locator(`.st-card[data-module="${copy.id}"] .st-menu-btn`).click();
    await page.locator(`#st-menu-${copy.id} [role=menuitem]`, { hasText: 'Delete' }).click();
    await page.locator('#st-modal-body button', { hasText: /^Delete$/ }).click();
    await waitToast(page, 'Local standby (copy) deleted.');
    assert.equal((await call(page, 'GET', `/api/v1/storage/modules/${copy.id}`)).status, 404, 'the copy is gone');
    await page.locator(`.st-card[data-module="${mod.id}"] .st-card-main`).click();

    // Phone: list above the details, nothing scrolls sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('#st-tab-overview');
    await page.locator('#st-panel-overview [data-overview]').waitFor();
    const layout = await page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      listAbove: document.querySelector('.st-list-card').getBoundingClientRect().bottom <= document.querySelector('#st-detail').getBoundingClientRect().top,
    }));
    assert.ok(layout.overflow <= 0, `no sideways scroll on a phone (${layout.overflow} px too wide)`);
    assert.ok(layout.listAbove, 'on a phone the list sits above the details');
    await clearToasts(page);
    await page.screenshot({ path: join(SHOTS, 'storage-phone-overview.png'), fullPage: true });
    await page.click('#st-tab-logs');
    await page.locator('#st-log-list li[data-level]').first().waitFor();
    await page.locator('#st-detail').scrollIntoViewIfNeeded();
    await clearToasts(page);
    await page.screenshot({ path: join(SHOTS, 'storage-phone-logs.png') });
    await page.click('[data-action=storage-add]');
    await page.locator('.st-provider').first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'storage-phone-wizard.png') });
    await page.keyboard.press('Escape');
    await page.locator('#st-modal').waitFor({ state: 'hidden' });
    await page.setViewportSize({ width: 1440, height: 900 });

    // The camera editor: the Storage section shows the default, then a chosen target list.
    await page.goto(`${server.base}/cameras`, { waitUntil: 'load' });
    await page.locator(`tr[data-camera="${cam.body.id}"] button`, { hasText: 'Settings' }).click();
    await page.locator('#storage-targets').waitFor();
    await page.locator('#st-targets li', { hasText: 'Uses the default: all enabled modules in priority order.' }).waitFor();
    await page.locator(`#st-target-module option[value="${mod.id}"]`).waitFor({ state: 'attached' });
    await page.locator('#st-target-module').selectOption(String(mod.id));
    await page.locator('#storage-targets button', { hasText: 'Add' }).click();
    await page.locator('#st-targets .st-target select').selectOption('motion');
    await page.locator('#st-targets .st-target input[type=number]').fill('15');
    const [saved] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith(`/api/v1/cameras/${cam.body.id}`), { timeout: 30_000 }),
      page.click('[data-action=storage-targets-save]'),
    ]);
    assert.equal(saved.status(), 200, `the camera's targets are saved: ${await saved.text()}`);
    await waitToast(page, 'Storage of Porch saved');
    const camNow = await call(page, 'GET', `/api/v1/cameras/${cam.body.id}`);
    assert.deepEqual(camNow.body.storage_targets, [{ module_id: mod.id, upload: 'motion', padding_seconds: 15 }],
      `the targets are saved: ${camNow.text}`);

    // (The one 404 expected is the test's own check that the deleted copy is gone.)
    assert.deepEqual(problems([new RegExp(`status of 404 .*/api/v1/storage/modules/${copy.id}\\)$`)]), [],
      `no console errors; toasts: ${JSON.stringify(await toastTexts(page))}`);
    await context.close();
  });
