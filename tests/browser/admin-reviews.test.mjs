// End-to-end browser test of the admin console's 確認待ち (manual review queue) and 削除依頼
// (deletion request), in headless Chromium at phone width, against a real
// `normal-form-app serve` on a fresh PostgreSQL database with InventoryAPI forced into its
// fallback. An operator signs in (password, then enrols TOTP from the page's secret), opens the
// queue from the navigation, approves the oldest inventory check with a comment (one unit of
// stock is reserved), then deletes another registrant after typing its 受付番号.
//
// Run from the repository root:
//   bash scripts/install-test-deps.sh && cargo build && node --test tests/browser/
//
// Screenshots go to target/screenshots/admin-*.png, the server's log to
// target/browser-admin-server.log.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVER_BIN = process.env.NFA_SERVER_BIN || path.join(REPO_ROOT, 'target', 'debug', 'normal-form-app');
const SCREENSHOT_DIR = path.join(REPO_ROOT, 'target', 'screenshots');
const SERVER_LOG = path.join(REPO_ROOT, 'target', 'browser-admin-server.log');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PG_ARGS = ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres'];
const ADMIN_EMAIL = 'operator@example.jp';
const ADMIN_PASSWORD = 'long password for the browser test 42';

const dbName = `nfa_browser_${randomBytes(6).toString('hex')}`;
let dataDir;
let server;
let serverExited = false;
let baseUrl;
let env;
let browser;

function psql(sql, { db = dbName } = {}) {
  return execFileSync('psql', [...PG_ARGS, '-d', db, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  }).trim();
}

function freePort() {
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

/** RFC 6238 code (SHA-1, 6 digits, 30 s) for a base32 secret. */
function totp(base32, unixSeconds) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of base32.replace(/[\s=]/g, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** A registration as the submit leaves it when InventoryAPI is down: needs_check + a review. */
function seedRegistration(number, email, name, minutesAgo) {
  const id = psql(
    `INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, given_name_kana, ` +
      `phone, birth_date, postal_code, prefecture, city, street, plan_id, created_at, inventory_status) VALUES ` +
      `('${number}', '${email}', 'x', '${name}', '太郎', 'ヤマダ', 'タロウ', '09012345678', '1990-04-01', '1500002', '東京都', ` +
      `'渋谷区', '渋谷2-21-1', 'standard', now() - interval '${minutesAgo} minutes', 'needs_check') RETURNING id`,
  );
  psql(
    `INSERT INTO manual_reviews (user_id, kind, reason, created_at) VALUES ` +
      `(${id}, 'inventory', '在庫APIで確認できませんでした（テスト）', now() - interval '${minutesAgo} minutes')`,
  );
  psql(`INSERT INTO user_sessions (token_hash, csrf_token, user_data, status, registration_number, user_id) VALUES ` +
    `('${randomBytes(16).toString('hex')}', 'x', '{"email": "${email}"}', 'completed', '${number}', ${id})`);
  return Number(id);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `admin-${name}.png`), fullPage: true });
}

before(async () => {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  psql(`CREATE DATABASE ${dbName}`, { db: 'postgres' });
  dataDir = mkdtempSync(path.join(tmpdir(), 'nfa-browser-admin-'));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`,
    DATA_DIR: dataDir,
    LISTEN_ADDR: `127.0.0.1:${port}`,
    PUBLIC_BASE_URL: baseUrl,
    LOG_FORMAT: 'json',
    FORCE_FALLBACK_INVENTORY: 'true',
  };
  const log = createWriteStream(SERVER_LOG);
  server = spawn(SERVER_BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout.pipe(log);
  server.stderr.pipe(log);
  server.on('exit', () => {
    serverExited = true;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.ok(!serverExited, `server exited early; see ${SERVER_LOG}`);
    try {
      if ((await fetch(`${baseUrl}/health`)).status === 200) break;
    } catch {
      /* not yet */
    }
    assert.ok(Date.now() < deadline, `server did not answer /health; see ${SERVER_LOG}`);
    await sleep(200);
  }
  execFileSync(SERVER_BIN, ['admin', 'create', ADMIN_EMAIL, '--role', 'operator'], {
    env,
    input: `${ADMIN_PASSWORD}\n`,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  if (server && !serverExited) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  try {
    psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`, { db: 'postgres' });
  } catch {
    /* best effort */
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('an operator works through the review queue and deletes a registrant', { timeout: 120_000 }, async () => {
  seedRegistration('AAAA-2345-OLDS', 'oldest@example.jp', '古田', 90);
  const newerId = seedRegistration('BBBB-2345-NEWR', 'newer@example.jp', '新井', 10);
  const stockBefore = Number(psql(`SELECT stock FROM plan_stock WHERE plan_id = 'standard'`));

  const page = await browser.newPage({ viewport: { width: 360, height: 740 } });
  page.setDefaultTimeout(15_000);
  let dialogs = 0;
  page.on('dialog', async (dialog) => {
    dialogs += 1;
    await dialog.dismiss();
  });

  // Sign in: password, then enrol the authenticator from the page's secret.
  await page.goto(`${baseUrl}/admin/login`);
  await page.getByLabel('メールアドレス').fill(ADMIN_EMAIL);
  await page.getByLabel('パスワード').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: '次へ' }).click();
  await page.waitForURL(/\/admin\/enrol$/);
  const secret = (await page.locator('.secret code').innerText()).trim();
  await page.locator('input[name="code"]').fill(totp(secret, Date.now() / 1000));
  await page.locator('main button[type="submit"]').click();
  await page.goto(`${baseUrl}/admin`);

  // The queue, from the navigation: oldest first.
  await page.getByRole('link', { name: '確認待ち' }).click();
  await page.waitForURL(/\/admin\/reviews$/);
  const rows = await page.locator('.review-table tbody tr').allInnerTexts();
  assert.equal(rows.length, 2);
  assert.match(rows[0], /AAAA-2345-OLDS/);
  assert.match(rows[1], /BBBB-2345-NEWR/);
  await shot(page, 'queue');

  // Approve the oldest with a comment.
  await page.getByRole('link', { name: 'AAAA-2345-OLDS' }).click();
  await page.waitForURL(/\/admin\/reviews\/\d+$/);
  await page.getByLabel('コメント（却下する場合は必須）').fill('倉庫に電話して在庫を確認');
  await page.getByRole('button', { name: '承認する' }).click();
  await page.waitForURL(/done=approved/);
  assert.match(await page.locator('[role="status"]').innerText(), /承認しました/);
  await shot(page, 'approved');
  assert.equal(psql(`SELECT inventory_status FROM users WHERE registration_number = 'AAAA-2345-OLDS'`), 'confirmed');
  assert.equal(Number(psql(`SELECT stock FROM plan_stock WHERE plan_id = 'standard'`)), stockBefore - 1);
  assert.equal(psql(`SELECT count(*) FROM audit_log WHERE action = 'review.approve'`), '1');

  // Delete the other registrant: confirm by typing its 受付番号.
  await page.goto(`${baseUrl}/admin/registrations/${newerId}/delete`);
  await shot(page, 'delete-confirm');
  await page.getByLabel('削除の理由・問い合わせ番号（必須）').fill('本人からの削除依頼（問い合わせ #42）');
  await page.getByLabel('確認のため、受付番号を入力してください（必須）').fill('bbbb-2345-newr');
  // The answer is a redirect to 登録一覧 (another part of the console), so the POST's own
  // response is what this test checks.
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/delete')),
    page.getByRole('button', { name: '個人情報を削除する' }).click(),
  ]);
  assert.equal(answer.status(), 303);
  assert.equal(answer.headers()['location'], '/admin/registrations?deleted=1');
  assert.equal(psql(`SELECT count(*) FROM users WHERE email = 'newer@example.jp'`), '0');
  assert.equal(psql(`SELECT count(*) FROM user_sessions WHERE user_data->>'email' = 'newer@example.jp'`), '0');
  const audit = psql(`SELECT detail::text FROM audit_log WHERE action = 'registration.delete'`);
  assert.match(audit, /BBBB-2345-NEWR/);
  assert.doesNotMatch(audit, /newer@example\.jp|新井/);
  assert.equal(dialogs, 0, 'no script dialog ever opened');
  await page.close();
});
