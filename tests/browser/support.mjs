// Shared pieces of the browser suites: a real `normal-form-app serve` on a fresh PostgreSQL
// database, the operator CLI, a JSON-API registrant, and RFC 6238 codes for admin sign-in.

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SERVER_BIN = process.env.NFA_SERVER_BIN || path.join(REPO_ROOT, 'target', 'debug', 'normal-form-app');
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'target', 'screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PG_ARGS = ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres'];

export function psql(sql, { db = 'postgres' } = {}) {
  return execFileSync('psql', [...PG_ARGS, '-d', db, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  }).trim();
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts the server on a fresh PostgreSQL database with `env` added. Returns
 * { baseUrl, databaseUrl, dbName, env, logTail(), stop() }; stop() also drops the database.
 */
export async function startServer({ name, env = {} }) {
  if (!existsSync(SERVER_BIN)) {
    const built = spawnSync('cargo', ['build'], { cwd: REPO_ROOT, stdio: ['ignore', 2, 2] });
    assert.equal(built.status, 0, 'cargo build failed');
  }
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run bash scripts/install-test-deps.sh`);
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const dbName = `nfa_browser_${randomBytes(6).toString('hex')}`;
  psql(`CREATE DATABASE ${dbName}`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'nfa-browser-'));
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  const fullEnv = { ...process.env, LISTEN_ADDR: `127.0.0.1:${port}`, DATABASE_URL: databaseUrl, DATA_DIR: dataDir, LOG_FORMAT: 'json', ...env };
  const log = createWriteStream(path.join(REPO_ROOT, 'target', `browser-${name}-server.log`));
  let tail = '';
  let exited = null;
  const server = spawn(SERVER_BIN, ['serve'], { cwd: REPO_ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const onOutput = (chunk) => {
    log.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-16_000);
  };
  server.stdout.on('data', onOutput);
  server.stderr.on('data', onOutput);
  server.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`server exited (${JSON.stringify(exited)}):\n${tail}`);
    try {
      if ((await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) })).status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`server did not become healthy:\n${tail}`);
    await sleep(200);
  }
  const stop = async () => {
    if (!exited) {
      await new Promise((resolve) => {
        const killer = setTimeout(() => server.kill('SIGKILL'), 10_000);
        server.once('exit', () => {
          clearTimeout(killer);
          resolve();
        });
        server.kill('SIGTERM');
      });
    }
    psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { baseUrl, databaseUrl, dbName, env: fullEnv, logTail: () => tail, stop };
}

/** `normal-form-app admin create` with the password on stdin, as a script would. */
export function createAdmin(server, email, role, password) {
  const run = spawnSync(SERVER_BIN, ['admin', 'create', email, '--role', role], {
    cwd: REPO_ROOT,
    env: server.env,
    input: `${password}\n`,
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, `admin create failed: ${run.stderr}`);
}

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    assert.ok(v >= 0, `not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 (SHA-1, 6 digits, 30 s) — what an authenticator app would show at `unixSeconds`. */
export function totp(base32Secret, unixSeconds = Date.now() / 1000) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32Decode(base32Secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, '0');
}

/** Registers a person through the JSON API (a native client); returns the 受付番号. */
export async function registerViaApi(baseUrl, values) {
  const start = await fetch(`${baseUrl}/api/v1/flows`, { method: 'POST' });
  assert.equal(start.status, 201);
  const { token } = await start.json();
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const put = async (step, body) => {
    const res = await fetch(`${baseUrl}/api/v1/flows/current/steps/${step}`, { method: 'PUT', headers, body: JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, 200, `${step}: ${text}`);
  };
  await put('customer', values.customer);
  await put('address', values.address);
  await put('plan', { plan_id: values.plan ?? 'basic' });
  const done = await fetch(`${baseUrl}/api/v1/flows/current/submit`, { method: 'POST', headers, body: JSON.stringify({ agree: true }) });
  const body = await done.text();
  assert.equal(done.status, 201, body);
  return JSON.parse(body).registration_number;
}
