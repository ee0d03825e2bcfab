// End-to-end browser test of the admin console (/admin) in Debian's Chromium: an operator signs
// in with password + TOTP (enrolling the authenticator from the QR page first), works through
// the 確認待ち queue, exports CSV and deletes a registrant on request. Registrants are created
// through the JSON API with InventoryAPI forced into its fallback, so their stock is 「要確認」 and
// they land in the queue.
//
// Run from the repository root: cargo build && node --test tests/browser/admin.test.mjs
// Screenshots go to target/screenshots/admin-*.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, SCREENSHOT_DIR, createAdmin, psql, registerViaApi, startServer, totp } from './support.mjs';

const PASSWORD = 'operator password 2026 long';
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 900 };
const runId = randomBytes(3).toString('hex');

let server;
let browser;

before(
  async () => {
    server = await startServer({ name: 'admin', env: { FORCE_FALLBACK_INVENTORY: 'true' } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  },
  { timeout: 60_000 },
);

after(
  async () => {
    await browser?.close();
    await server?.stop();
  },
  { timeout: 60_000 },
);

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `admin-${name}.png`), fullPage: true });
}

/** Fails on any uncaught script error, dialog or 5xx while `page` is used. */
function watch(page, problems) {
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('dialog', (dialog) => {
    problems.push(`unexpected dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('response', (res) => {
    if (res.status() >= 500) problems.push(`HTTP ${res.status()} from ${res.url()}`);
  });
}

/** Password, then (first time) enrolment from the page's key, else the current code. */
async function signIn(page, email, { secret } = {}) {
  await page.goto(`${server.baseUrl}/admin`);
  await page.waitForURL(/\/admin\/login$/);
  await page.getByLabel('メールアドレス').fill(email);
  await page.getByLabel('パスワード').fill(PASSWORD);
  await page.getByRole('button', { name: '次へ' }).click();
  if (!secret) {
    await page.waitForURL(/\/admin\/enrol$/);
    await assert.doesNotReject(page.getByAltText('認証アプリ用のQRコード').waitFor(), 'QR code shown');
    await shot(page, 'enrol-phone');
    secret = (await page.locator('.secret code').innerText()).replace(/\s+/g, '');
    await page.getByLabel('6桁のコード').fill(totp(secret));
    await page.getByRole('button', { name: '設定を完了する' }).click();
    await page.getByRole('heading', { name: 'リカバリーコード' }).waitFor();
    assert.equal(await page.locator('.recovery-codes li').count(), 10);
    await page.getByRole('link', { name: 'ダッシュボードへ進む' }).click();
  } else {
    await page.waitForURL(/\/admin\/login\/totp$/);
    // The next step's code: the enrolment used the current one, and codes work once.
    await page.getByLabel('認証アプリの6桁のコード').fill(totp(secret, Date.now() / 1000 + 30));
    await page.getByRole('button', { name: 'サインイン' }).click();
  }
  await page.waitForURL(/\/admin$/);
  await page.getByRole('heading', { name: 'ダッシュボード' }).waitFor();
  return secret;
}

test('an operator signs in with password and TOTP, and out again (phone width)', { timeout: 120_000 }, async () => {
  const email = `ops-${runId}@example.jp`;
  createAdmin(server, email, 'operator', PASSWORD);
  const context = await browser.newContext({ viewport: PHONE, locale: 'ja-JP' });
  const page = await context.newPage();
  const problems = [];
  watch(page, problems);
  const secret = await signIn(page, email);
  await shot(page, 'dashboard-phone');
  await page.getByRole('button', { name: 'サインアウト' }).click();
  await page.waitForURL(/\/admin\/login\?signed_out=1$/);
  await page.goto(`${server.baseUrl}/admin`);
  await page.waitForURL(/\/admin\/login$/);
  await signIn(page, email, { secret });
  assert.deepEqual(problems, []);
  await context.close();
});
