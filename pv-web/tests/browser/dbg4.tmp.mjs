import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { startServer, stopServer, startCamera, poll } from '/work/main/pv-web/tests/browser/harness.mjs';
const camera = await startCamera(process.argv[2]);
const server = await startServer({ env: { PV_RECORDING__SEGMENT_SECONDS: '6' } });
const token = execFileSync(process.env.PV_BIN, ['--data-dir', server.dataDir, 'token', 'create', '--user', 'Thalia']).toString().trim();
const api = (path, init = {}) => fetch(new URL(`/api/v1${path}`, server.url), { ...init, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
function tops(b) { const out = []; for (let i = 0; i + 8 <= b.length;) { const n = b.readUInt32BE(i); out.push(b.toString('latin1', i + 4, i + 8) + ':' + n); if (n < 8) break; i += n; } return out.join(' '); }
try {
  const cam = await (await api('/cameras', { method: 'POST', body: JSON.stringify({ name: 'Test yard', main_url: camera.url }) })).json();
  await poll('segs', async () => { const l = await (await api(`/recordings?camera_id=${cam.id}`)).json(); return { done: l.length >= 1, value: l }; }, 40000);
  const dir = `${server.dataDir}/cameras/id-${cam.id}`;
  for (let k = 0; k < 8; k++) {
    const names = readdirSync(dir).sort();
    const f = names[names.length - 1];
    const b = readFileSync(`${dir}/${f}`);
    const r = await api(`/cameras/${cam.id}/thumbnail.jpg?at=${new Date(Date.now() - 300).toISOString()}`);
    console.log(f, b.length, tops(b).slice(0, 200), '->', r.status, r.status === 200 ? '' : (await r.text()).slice(0, 120));
    await new Promise((r) => setTimeout(r, 700));
  }
} finally { await stopServer(server); camera.proc.stdin.end(); camera.proc.kill('SIGTERM'); }
