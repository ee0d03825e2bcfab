// The example front end in examples/api-client registers a person through the JSON API only,
// from another origin (CORS allow-list), in headless Chromium at phone width.
//
// Run from the repository root after `cargo build`: node --test tests/browser/

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.NFA_SERVER_BIN || path.join(ROOT, 'target', 'debug', 'normal-form-app');
const EXAMPLE = path.join(ROOT, 'examples', 'api-client');
const SHOTS = path.join(ROOT, 'target', 'screenshots');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let api;
let pageServer;
let browser;
let dataDir;
let apiUrl;
let pageUrl;

before(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'nfa-api-client-'));
  const [apiPort, pagePort] = [await freePort(), await freePort()];
  apiUrl = `http://127.0.0.1:${apiPort}`;
  pageUrl = `http://127.0.0.1:${pagePort}`;
  // The example page, served from its own origin like a separately deployed front end.
  pageServer = createHttpServer((req, res) => {
    const file = req.url === '/app.js' ? 'app.js' : 'index.html';
    res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/html; charset=utf-8' });
    res.end(readFileSync(path.join(EXAMPLE, file)));
  }).listen(pagePort, '127.0.0.1');
  api = spawn(BIN, ['serve'], {
    env: { ...process.env, LISTEN_ADDR: `127.0.0.1:${apiPort}`, DATA_DIR: dataDir, LOG_FORMAT: 'json', CORS_ALLOWED_ORIGINS: pageUrl },
    stdio: 'ignore',
  });
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${apiUrl}/health`)).status === 200) break;
    } catch {}
    await sleep(200);
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  api?.kill('SIGTERM');
  pageServer?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('the example front end registers through the JSON API from another origin', { timeout: 120_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 360, height: 740 }, locale: 'ja-JP' });
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${pageUrl}/?api=${encodeURIComponent(apiUrl)}`);
  await page.getByLabel('姓', { exact: true }).waitFor();
  mkdirSync(SHOTS, { recursive: true });

  const step1 = { 姓: '佐藤', 名: '花子', セイ: 'さとう', メイ: 'はなこ', メールアドレス: 'api.example@example.jp', 'メールアドレス（確認用）': 'api.example@example.jp', パスワード: 'correct-horse-battery-42', 電話番号: '080-9876-5432', 生年月日: '1992-02-29' };
  for (const [label, value] of Object.entries(step1)) await page.getByLabel(label, { exact: true }).fill(value);
  // A mistake first: the API's Japanese message appears next to the field.
  await page.getByLabel('電話番号', { exact: true }).fill('12');
  await page.getByRole('button', { name: '次へ' }).click();
  await page.getByText('電話番号は0から始まる10桁または11桁').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'api-client-error.png'), fullPage: true });
  await page.getByLabel('電話番号', { exact: true }).fill('080-9876-5432');
  await page.getByRole('button', { name: '次へ' }).click();

  await page.getByLabel('郵便番号', { exact: true }).waitFor();
  await page.getByLabel('郵便番号', { exact: true }).fill('1500002');
  await page.getByLabel('都道府県', { exact: true }).selectOption('東京都');
  await page.getByLabel('市区町村', { exact: true }).fill('渋谷区');
  await page.getByLabel('番地', { exact: true }).fill('渋谷2-21-1');
  await page.getByRole('button', { name: '次へ' }).click();

  await page.getByRole('radio').first().waitFor();
  await page.getByRole('radio', { disabled: false }).first().check();
  await page.getByRole('button', { name: '次へ' }).click();

  await page.getByLabel(/同意/).check();
  await page.getByRole('button', { name: '登録する' }).click();
  await page.locator('#number').filter({ hasText: /-/ }).waitFor();
  const number = await page.locator('#number').textContent();
  await page.screenshot({ path: path.join(SHOTS, 'api-client-done.png'), fullPage: true });
  assert.match(number, /^[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}$/);
  assert.deepEqual(errors, []);
});
