// End-to-end browser test of the admin console (/admin) in Debian's Chromium: an operator signs
// in with password + TOTP (enrolling the authenticator from the QR page first), works through
// the 確認待ち queue, finds a registrant in 登録一覧, exports CSV and deletes a registrant on
// request; a viewer sees the screens without the operators' actions; registrations whose fields
// hold script payloads are shown on every screen without any script running. Registrants are
// created through the JSON API with InventoryAPI forced into its fallback, so their stock is
// 「要確認」 and they land in the queue.
//
// Run from the repository root: cargo build && node --test tests/browser/admin.test.mjs
// Screenshots go to target/screenshots/admin-*.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

const customer = (email, [family, given, familyKana, givenKana] = ['山田', '太郎', 'やまだ', 'たろう']) => ({
  family_name: family,
  given_name: given,
  family_name_kana: familyKana,
  given_name_kana: givenKana,
  email,
  email_confirm: email,
  password: 'correct-horse-battery-42',
  phone: '090-1234-5678',
  birth_date: '1990-04-01',
});
const ADDRESS = { postal_code: '150-0002', prefecture: '東京都', city: '渋谷区', street: '渋谷2-21-1', building: '' };

const sql = (query) => psql(query, { db: server.dbName });

test('an operator approves from the queue, finds and exports registrations, and deletes one', { timeout: 180_000 }, async () => {
  const older = await registerViaApi(server.baseUrl, { customer: customer(`older-${runId}@example.jp`, ['古田', '一郎', 'ふるた', 'いちろう']), address: ADDRESS });
  const newer = await registerViaApi(server.baseUrl, { customer: customer(`newer-${runId}@example.jp`, ['新井', '花子', 'あらい', 'はなこ']), address: ADDRESS });
  const stockBefore = Number(sql(`SELECT stock FROM plan_stock WHERE plan_id = 'basic'`));
  const email = `queue-${runId}@example.jp`;
  createAdmin(server, email, 'operator', PASSWORD);
  const context = await browser.newContext({ viewport: PHONE, locale: 'ja-JP', acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems = [];
  watch(page, problems);
  await signIn(page, email);

  // 確認待ち, from the navigation: oldest first; approve it with a comment.
  await page.getByRole('link', { name: '確認待ち', exact: true }).click();
  await page.waitForURL(/\/admin\/reviews$/);
  const rows = await page.locator('.review-table tbody tr').allInnerTexts();
  assert.ok(rows.length >= 2, `two reviews listed: ${rows}`);
  assert.ok(rows.findIndex((r) => r.includes(older)) < rows.findIndex((r) => r.includes(newer)), 'oldest first');
  await shot(page, 'queue-phone');
  await page.getByRole('link', { name: older }).click();
  await page.getByLabel('判定の理由（却下する場合は必須）').selectOption('stock_confirmed');
  await page.getByLabel(/^メモ/).fill('倉庫に電話して在庫を確認');
  await page.getByRole('button', { name: '承認する' }).click();
  await page.waitForURL(/done=approved/);
  assert.match(await page.locator('[role="status"]').innerText(), /承認しました/);
  assert.equal(sql(`SELECT inventory_status FROM users WHERE registration_number = '${older}'`), 'confirmed');
  assert.equal(Number(sql(`SELECT stock FROM plan_stock WHERE plan_id = 'basic'`)), stockBefore - 1, 'one unit reserved');

  // 登録一覧: search by name in hiragana, open the detail page.
  await page.getByRole('link', { name: '登録一覧', exact: true }).click();
  await page.waitForURL(/\/admin\/registrations$/);
  await page.getByLabel('氏名・フリガナ').fill('あらい');
  await page.getByRole('button', { name: '検索' }).click();
  await page.waitForURL(/name=/);
  const found = await page.locator('table.registrations tbody tr').allInnerTexts();
  assert.equal(found.length, 1, `one match for あらい: ${found}`);
  assert.match(found[0], new RegExp(newer));
  await shot(page, 'registrations-phone');

  // CSV export of everything (UTF-8 with BOM), as the browser downloads it.
  await page.goto(`${server.baseUrl}/admin/registrations`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSVダウンロード（UTF-8）' }).click()]);
  const csv = readFileSync(await download.path());
  assert.deepEqual([...csv.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'starts with a UTF-8 BOM');
  const text = csv.subarray(3).toString('utf8');
  assert.match(text.split('\r\n')[0] ?? text.split('\n')[0], /受付番号/);
  assert.ok(text.includes(older) && text.includes(newer), 'both registrations exported');
  assert.doesNotMatch(text, /\$argon2id\$/, 'no password hash');
  assert.equal(sql(`SELECT COUNT(*) FROM audit_log WHERE action LIKE '%export%'`), '1', 'the export is audited');

  // 削除依頼 from the detail page: type the 受付番号 to confirm.
  await page.getByRole('link', { name: newer }).click();
  await page.getByRole('link', { name: '削除依頼' }).click();
  await shot(page, 'delete-phone');
  // A note naming the registrant is refused and says why; the reason code and a ticket pass.
  await page.getByLabel('削除の理由（必須）').selectOption('erasure_request');
  await page.getByLabel(/^メモ・問い合わせ番号/).fill('新井様から電話で依頼');
  await page.getByLabel('確認のため、受付番号を入力してください（必須）').fill(newer.toLowerCase());
  await page.getByRole('button', { name: '個人情報を削除する' }).click();
  assert.match(await page.locator('.error-summary').innerText(), /個人情報（姓）が含まれているようです/);
  assert.equal(sql(`SELECT COUNT(*) FROM users WHERE registration_number = '${newer}'`), '1', 'nothing deleted');
  await page.getByLabel(/^メモ・問い合わせ番号/).fill('問い合わせ #42');
  await page.getByLabel('確認のため、受付番号を入力してください（必須）').fill(newer.toLowerCase());
  await page.getByRole('button', { name: '個人情報を削除する' }).click();
  await page.waitForURL(/\/admin\/registrations\?deleted=1$/);
  assert.match(await page.locator('[role="status"]').innerText(), /削除しました/);
  assert.equal(sql(`SELECT COUNT(*) FROM users WHERE registration_number = '${newer}'`), '0');
  assert.equal(sql(`SELECT COUNT(*) FROM user_sessions WHERE user_data->>'email' = 'newer-${runId}@example.jp'`), '0');
  assert.doesNotMatch(sql(`SELECT detail::text FROM audit_log WHERE action = 'registration.delete'`), /newer-|新井/);
  assert.equal(sql(`SELECT detail->>'reason_code' FROM audit_log WHERE action = 'registration.delete'`), 'erasure_request');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a viewer reads every screen but is offered none of the actions (desktop)', { timeout: 120_000 }, async () => {
  await registerViaApi(server.baseUrl, { customer: customer(`viewed-${runId}@example.jp`), address: ADDRESS });
  const email = `viewer-${runId}@example.jp`;
  createAdmin(server, email, 'viewer', PASSWORD);
  const context = await browser.newContext({ viewport: DESKTOP, locale: 'ja-JP' });
  const page = await context.newPage();
  const problems = [];
  watch(page, problems);
  await signIn(page, email);
  await shot(page, 'dashboard-desktop');
  for (const [name, path] of [['reviews', '/admin/reviews'], ['registrations', '/admin/registrations'], ['switches', '/admin/switches'], ['audit', '/admin/audit']]) {
    await page.goto(`${server.baseUrl}${path}`);
    await shot(page, `${name}-desktop`);
  }
  await page.goto(`${server.baseUrl}/admin/registrations`);
  assert.equal(await page.getByRole('link', { name: /CSVダウンロード/ }).count(), 0, 'no export for viewers');
  await page.goto(`${server.baseUrl}/admin/switches`);
  assert.equal(await page.getByRole('button', { name: 'フォールバックを強制する' }).count(), 0, 'no switching for viewers');
  // The server refuses even a hand-made export request.
  const response = await page.goto(`${server.baseUrl}/admin/registrations/export.csv`);
  assert.equal(response.status(), 403);
  assert.deepEqual(problems, []);
  await context.close();
});

// Each payload would open a dialog or set window.__xss if it ran.
const PAYLOADS = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(2)>',
  "'><svg onload=alert(3)>",
  '</textarea><script>window.__xss=4</script>',
  '<iframe srcdoc="<script>parent.__xss=5</script>">',
];

test('script payloads stored in a registration run on no admin screen', { timeout: 120_000 }, async () => {
  const [a, b, c, d, e] = PAYLOADS.map((p) => p.replaceAll("'", "''"));
  const id = sql(
    `INSERT INTO users (registration_number, email, password_hash, family_name, given_name, family_name_kana, given_name_kana, ` +
      `phone, birth_date, postal_code, prefecture, city, street, building, plan_id, inventory_status) VALUES ` +
      `('XSSB-XSSB-XSSB', 'xss-${runId}@example.jp', 'x', '${a}', '${b}', '${c}', '${d}', '${e}', '1990-01-01', '1500002', ` +
      `'${a}', '${b}', '${c}', '${d}', 'basic', 'needs_check') RETURNING id`,
  );
  sql(`INSERT INTO manual_reviews (user_id, kind, reason) VALUES (${id}, 'inventory', '${a} ${e}')`);
  sql(`INSERT INTO form_errors (step, field) VALUES ('${a}', '${b}')`);
  const email = `xss-op-${runId}@example.jp`;
  createAdmin(server, email, 'operator', PASSWORD);
  const context = await browser.newContext({ viewport: DESKTOP, locale: 'ja-JP' });
  const page = await context.newPage();
  const problems = [];
  watch(page, problems);
  await signIn(page, email);
  const review = sql(`SELECT id FROM manual_reviews WHERE user_id = ${id}`);
  for (const path of ['/admin', '/admin/reviews', `/admin/reviews/${review}`, '/admin/registrations', '/admin/registrations?name=%3Cscript', `/admin/registrations/${id}`, `/admin/registrations/${id}/delete`, '/admin/audit']) {
    await page.goto(`${server.baseUrl}${path}`);
    await page.waitForLoadState('load');
    assert.equal(await page.evaluate(() => window.__xss), undefined, `no payload ran on ${path}`);
    const scripts = await page.evaluate(() => [...document.scripts].map((s) => s.src || s.textContent));
    assert.ok(scripts.every((s) => s.startsWith(`${location.origin}/static/`) || s === ''), `only our own scripts on ${path}: ${scripts}`);
    assert.equal(await page.locator('img[src="x"], svg[onload], iframe').count(), 0, `no injected element on ${path}`);
  }
  await shot(page, 'xss-detail-desktop');
  assert.deepEqual(problems, []);
  await context.close();
});
