// End-to-end browser test of the member-registration form (会員登録フォーム).
//
// Drives Debian's Chromium (/usr/bin/chromium) with playwright-core against a
// real `normal-form-app serve` process backed by a fresh PostgreSQL database,
// and registers one person with JavaScript enabled and one with it disabled,
// filling the fields by their visible labels as a person would.
//
// Run from the repository root:
//   bash scripts/install-test-deps.sh && cargo build && node --test tests/browser/
//
// Screenshots of every step go to target/screenshots/, the server's log to
// target/browser-test-server.log.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

import { freePort, psql } from './support.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// NFA_SERVER_BIN overrides the server executable (e.g. a release build).
const SERVER_BIN = process.env.NFA_SERVER_BIN || path.join(REPO_ROOT, 'target', 'debug', 'normal-form-app');
const SCREENSHOT_DIR = path.join(REPO_ROOT, 'target', 'screenshots');
const SERVER_LOG = path.join(REPO_ROOT, 'target', 'browser-test-server.log');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const TEST_TIMEOUT_MS = 120_000;
const HEALTH_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 15_000;
const VIEWPORT = { width: 360, height: 740 };

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const ROUTES = {
  customer: '/register/customer',
  address: '/register/address',
  plan: '/register/plan',
  confirm: '/register/confirm',
  complete: '/register/complete',
};

// ---------------------------------------------------------------------------
// shared state, set up in before() and torn down in after()

const dbName = `nfa_browser_${randomBytes(6).toString('hex')}`;
let dataDir;
let server; // ChildProcess
let serverExit = null; // { code, signal } once the server has exited
let serverLogTail = '';
let baseUrl;
let browser;

// ---------------------------------------------------------------------------
// helpers

function serverLogExcerpt() {
  return `--- last server output (full log: ${SERVER_LOG}) ---\n${serverLogTail.slice(-4000)}`;
}

async function waitForHealth(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no attempt made';
  while (Date.now() < deadline) {
    if (serverExit) {
      throw new Error(
        `server exited before /health answered (code ${serverExit.code}, signal ${serverExit.signal})\n${serverLogExcerpt()}`,
      );
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000), redirect: 'manual' });
      if (res.status === 200) return;
      lastProblem = `GET /health answered ${res.status}`;
    } catch (err) {
      lastProblem = `GET /health failed: ${err.cause?.code ?? err.message}`;
    }
    await sleep(200);
  }
  throw new Error(`server did not answer 200 on /health within ${timeoutMs / 1000} s (${lastProblem})\n${serverLogExcerpt()}`);
}

function stopServer() {
  if (!server || serverExit) return Promise.resolve();
  return new Promise((resolve) => {
    const killTimer = setTimeout(() => {
      process.stderr.write('server did not stop within 10 s of SIGTERM; sending SIGKILL\n');
      server.kill('SIGKILL');
    }, 10_000);
    server.once('exit', () => {
      clearTimeout(killTimer);
      resolve();
    });
    server.kill('SIGTERM');
  });
}

function samePath(expectedPath) {
  return (url) => url.pathname.replace(/\/+$/, '') === expectedPath;
}

/** Texts of anything on the page that looks like an error message, for failure reports. */
async function visibleErrors(page) {
  try {
    const texts = await page
      .locator('[role="alert"], .error, .errors, .field-error, .invalid-feedback, [aria-invalid="true"] + *, .notice')
      .allInnerTexts();
    return texts.map((t) => t.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/** Full-page screenshot into target/screenshots/<prefix>-<name>.png. */
async function shot(page, prefix, name) {
  const file = path.join(SCREENSHOT_DIR, `${prefix}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Waits until the page is at `expectedPath`; on timeout fails with where the
 * page actually is and any error messages it shows (plus a screenshot).
 */
async function expectStep(page, expectedPath, what, prefix) {
  try {
    await page.waitForURL(samePath(expectedPath), { timeout: STEP_TIMEOUT_MS });
  } catch (err) {
    let file = '(no screenshot)';
    try {
      file = await shot(page, prefix, `FAILED-expected-${expectedPath.replaceAll('/', '_')}`);
    } catch {
      /* ignore */
    }
    const errors = await visibleErrors(page);
    throw new Error(
      `expected to reach ${what} (${expectedPath}) but the page is at ${page.url()}` +
        (errors.length ? `; it shows: ${JSON.stringify(errors)}` : '') +
        `; screenshot: ${file}; cause: ${err.message.split('\n')[0]}`,
    );
  }
}

function byLabel(page, text) {
  return page.getByLabel(text, { exact: true });
}

async function fillByLabel(page, text, value) {
  const field = byLabel(page, text);
  const count = await field.count();
  assert.equal(count, 1, `expected exactly one form field labelled "${text}" on ${page.url()}, found ${count}`);
  await field.fill(value);
}

function nextButton(page) {
  return page.getByRole('button', { name: '次へ', exact: true });
}

function backButton(page) {
  return page.getByRole('button', { name: '戻る', exact: true });
}

/** The visible text of the <label> that belongs to `input` (for= or wrapping). */
async function labelTextOf(page, input) {
  const id = await input.getAttribute('id');
  if (id) {
    const byFor = page.locator(`label[for="${id}"]`);
    if ((await byFor.count()) > 0) return (await byFor.first().innerText()).trim();
  }
  const wrapping = input.locator('xpath=ancestor::label[1]');
  if ((await wrapping.count()) > 0) return (await wrapping.innerText()).trim();
  return '';
}

// ---------------------------------------------------------------------------
// the registration flow, as a person would do it

const STEP1 = (email) => [
  ['姓', '山田'],
  ['名', '太郎'],
  ['セイ', 'やまだ'], // hiragana on purpose: the app stores katakana (ヤマダ)
  ['メイ', 'たろう'],
  ['メールアドレス', email],
  ['メールアドレス（確認用）', email],
  ['パスワード', 'correct-horse-battery-42'],
  ['電話番号', '090-1234-5678'],
  ['生年月日', '1990-04-01'],
];

const STEP2 = [
  ['郵便番号', '150-0002'],
  ['市区町村', '渋谷区'],
  ['番地', '渋谷2-21-1'],
  ['建物名・部屋番号', '渋谷ヒカリエ 11F'],
];

/**
 * Registers one person in `context` and returns { registrationNumber, diagnostics }.
 * `prefix` names the screenshots ("js" / "nojs").
 */
async function register(context, { email, prefix, t }) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);

  const problems = [];
  page.on('pageerror', (err) => problems.push(`uncaught page error: ${err.message}`));
  page.on('response', (res) => {
    if (res.url().startsWith(baseUrl) && res.status() >= 500) {
      problems.push(`HTTP ${res.status()} from ${res.request().method()} ${res.url()}`);
    }
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const where = msg.location()?.url ? ` (${msg.location().url})` : '';
      t.diagnostic(`[${prefix}] browser console error: ${msg.text()}${where}`);
    }
  });

  // --- step 1: お客様情報 -------------------------------------------------
  const first = await page.goto(`${baseUrl}/`);
  assert.ok(first, 'navigating to / produced no response');
  await expectStep(page, ROUTES.customer, 'step 1 お客様情報 (GET / should redirect there)', prefix);
  await shot(page, prefix, '01-customer-empty');

  for (const [label, value] of STEP1(email)) await fillByLabel(page, label, value);
  assert.equal(await byLabel(page, '生年月日').getAttribute('type'), 'date', '生年月日 should be an <input type="date">');
  await shot(page, prefix, '02-customer-filled');
  await nextButton(page).click();
  await expectStep(page, ROUTES.address, 'step 2 ご住所 after 次へ on step 1', prefix);
  await shot(page, prefix, '03-address-empty');

  // --- 戻る from step 2 keeps what was typed on step 1 ----------------------
  await backButton(page).click();
  await expectStep(page, ROUTES.customer, 'step 1 お客様情報 after 戻る on step 2', prefix);
  await shot(page, prefix, '04-customer-after-back');
  assert.equal(
    await byLabel(page, '姓').inputValue(),
    '山田',
    '姓 should still hold 山田 after going back from step 2 with 戻る',
  );
  // A person re-types a cleared field only when the form still requires it
  // (the password, for instance, may be kept server-side and become optional).
  for (const [label, value] of STEP1(email)) {
    const field = byLabel(page, label);
    const now = await field.inputValue();
    if (now === '') {
      const required = (await field.getAttribute('required')) !== null;
      t.diagnostic(
        `[${prefix}] after 戻る the field "${label}" is empty and ${required ? 'required; re-typing it' : 'optional; leaving it empty'}`,
      );
      if (required) await field.fill(value);
    } else if (label === 'セイ' || label === 'メイ') {
      t.diagnostic(`[${prefix}] after 戻る "${label}" holds "${now}"`);
    }
  }
  await nextButton(page).click();
  await expectStep(page, ROUTES.address, 'step 2 ご住所 after 次へ on step 1 (second time)', prefix);

  // --- step 2: ご住所 ------------------------------------------------------
  // 住所検索: typing the postal code (全角, with a hyphen) fills 都道府県・市区町村・番地 with
  // JavaScript; without it the 住所検索 button reloads the step with them filled.
  const pref = byLabel(page, '都道府県');
  assert.equal(await pref.count(), 1, 'expected one field labelled 都道府県');
  assert.equal(await pref.locator('xpath=self::select').count(), 1, '都道府県 should be a <select>');
  await byLabel(page, '郵便番号').fill('１５０－０００２');
  if (prefix === 'nojs') {
    await page.getByRole('button', { name: '住所検索', exact: true }).click();
    await expectStep(page, ROUTES.address, 'step 2 ご住所 after 住所検索', prefix);
  }
  await page.waitForFunction(
    () => document.querySelector('#f-city') && document.querySelector('#f-city').value === '渋谷区',
    null,
    { timeout: STEP_TIMEOUT_MS },
  );
  assert.equal(await pref.inputValue(), '東京都', `[${prefix}] 住所検索 should select 東京都`);
  assert.equal(await byLabel(page, '番地').inputValue(), '渋谷', `[${prefix}] 住所検索 should fill the town part of 番地`);
  await shot(page, prefix, '05a-address-looked-up');
  for (const [label, value] of STEP2.slice(1)) await fillByLabel(page, label, value);
  await shot(page, prefix, '05-address-filled');
  await nextButton(page).click();
  await expectStep(page, ROUTES.plan, 'step 3 プランの選択 after 次へ on step 2', prefix);
  await shot(page, prefix, '06-plan');

  // --- step 3: プランの選択 -------------------------------------------------
  const radios = page.getByRole('radio', { disabled: false });
  const radioCount = await radios.count();
  assert.ok(radioCount > 0, `step 3 should offer at least one enabled plan radio button, found ${radioCount}`);
  const radio = radios.first();
  const planLabel = await labelTextOf(page, radio);
  assert.ok(planLabel, 'the first plan radio button should have a <label> with the plan name');
  const planName = planLabel.split('\n').map((s) => s.trim()).find(Boolean);
  await radio.check();
  assert.ok(await radio.isChecked(), `plan radio "${planName}" should be checked after clicking it`);
  await shot(page, prefix, '07-plan-selected');
  await nextButton(page).click();
  await expectStep(page, ROUTES.confirm, 'step 4 確認 after 次へ on step 3', prefix);
  await shot(page, prefix, '08-confirm');

  // --- step 4: 確認 ---------------------------------------------------------
  const confirmText = await page.locator('body').innerText();
  assert.ok(
    confirmText.includes('ヤマダ'),
    `the confirm page should show セイ converted to katakana "ヤマダ" (typed "やまだ"); it shows:\n${confirmText}`,
  );
  assert.ok(
    confirmText.includes('タロウ'),
    `the confirm page should show メイ converted to katakana "タロウ" (typed "たろう"); it shows:\n${confirmText}`,
  );
  for (const expected of ['山田', '太郎', email, '東京都', '渋谷区', '渋谷2-21-1', '150-0002', planName]) {
    assert.ok(confirmText.includes(expected), `the confirm page should show "${expected}"; it shows:\n${confirmText}`);
  }
  assert.ok(
    !confirmText.includes('correct-horse-battery-42'),
    'the confirm page must not show the password in clear text',
  );

  const agree = page.getByLabel(/同意/);
  assert.equal(await agree.count(), 1, 'expected exactly one checkbox whose label contains 同意 on the confirm page');
  await agree.check();
  assert.ok(await agree.isChecked(), 'the 同意 checkbox should be checked after clicking it');
  await shot(page, prefix, '09-confirm-agreed');
  await page.getByRole('button', { name: '登録する', exact: true }).click();
  await expectStep(page, ROUTES.complete, 'step 5 完了 after 登録する', prefix);
  await shot(page, prefix, '10-complete');

  // --- step 5: 完了 ---------------------------------------------------------
  const numberEl = page.locator('#registration-number');
  assert.equal(await numberEl.count(), 1, 'the complete page should have one element with id="registration-number"');
  const registrationNumber = (await numberEl.innerText()).trim();
  assert.ok(registrationNumber.length > 0, 'the 受付番号 (#registration-number) should not be empty');
  const completeText = await page.locator('body').innerText();
  assert.ok(completeText.includes('受付番号'), `the complete page should mention 受付番号; it shows:\n${completeText}`);

  assert.deepEqual(problems, [], `problems seen while registering (${prefix})`);
  await page.close();
  return { registrationNumber };
}

function assertStored(email, registrationNumber) {
  const sqlEmail = email.replaceAll("'", "''");
  const rows = psql(`SELECT registration_number FROM users WHERE email = '${sqlEmail}'`, { db: dbName });
  assert.notEqual(rows, '', `no row in users for email ${email} after registering`);
  const lines = rows.split('\n');
  assert.equal(lines.length, 1, `expected one users row for ${email}, found ${lines.length}: ${rows}`);
  assert.equal(
    lines[0],
    registrationNumber,
    `users.registration_number for ${email} should equal the 受付番号 shown on the 完了 page`,
  );
}

// ---------------------------------------------------------------------------
// setup / teardown

before(
  async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    // Drop this suite's screenshots from earlier runs so none are mistaken for this run's.
    for (const f of readdirSync(SCREENSHOT_DIR)) {
      if (/^(js|nojs)-.*\.png$/.test(f)) rmSync(path.join(SCREENSHOT_DIR, f), { force: true });
    }

    if (!existsSync(SERVER_BIN)) {
      process.stderr.write(`${SERVER_BIN} is missing; running cargo build\n`);
      const built = spawnSync('cargo', ['build'], { cwd: REPO_ROOT, stdio: ['ignore', 2, 2] });
      assert.equal(built.status, 0, 'cargo build failed');
      assert.ok(existsSync(SERVER_BIN), `cargo build did not produce ${SERVER_BIN}`);
    }
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run bash scripts/install-test-deps.sh`);

    psql(`CREATE DATABASE ${dbName}`);
    dataDir = mkdtempSync(path.join(tmpdir(), 'nfa-browser-'));

    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const log = createWriteStream(SERVER_LOG);
    server = spawn(SERVER_BIN, ['serve'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        LISTEN_ADDR: `127.0.0.1:${port}`,
        DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`,
        DATA_DIR: dataDir,
        LOG_FORMAT: 'json',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onOutput = (chunk) => {
      log.write(chunk);
      serverLogTail = (serverLogTail + chunk.toString('utf8')).slice(-16_000);
    };
    server.stdout.on('data', onOutput);
    server.stderr.on('data', onOutput);
    server.on('exit', (code, signal) => {
      serverExit = { code, signal };
    });
    server.on('error', (err) => {
      serverExit = { code: null, signal: null };
      serverLogTail += `\nspawn error: ${err.message}`;
    });

    await waitForHealth(baseUrl, HEALTH_TIMEOUT_MS);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  },
  { timeout: 15 * 60_000 }, // room for a cargo build when the binary is missing
);

after(
  async () => {
    const errors = [];
    try {
      await browser?.close();
    } catch (err) {
      errors.push(`closing Chromium: ${err.message}`);
    }
    await stopServer();
    try {
      psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    } catch (err) {
      errors.push(`dropping database ${dbName}: ${err.message}`);
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (errors.length) throw new Error(`teardown problems:\n${errors.join('\n')}`);
  },
  { timeout: 60_000 },
);

// ---------------------------------------------------------------------------
// tests

const runId = randomBytes(4).toString('hex');

test('registers a person with JavaScript enabled (phone width)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const email = `browser-js-${runId}@example.com`;
  const context = await browser.newContext({ viewport: VIEWPORT, locale: 'ja-JP', javaScriptEnabled: true });
  try {
    const { registrationNumber } = await register(context, { email, prefix: 'js', t });
    t.diagnostic(`registered ${email} as ${registrationNumber}`);
    assertStored(email, registrationNumber);
  } finally {
    await context.close();
  }
});

test('registers a person with JavaScript disabled (phone width)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const email = `browser-nojs-${runId}@example.com`;
  const context = await browser.newContext({ viewport: VIEWPORT, locale: 'ja-JP', javaScriptEnabled: false });
  try {
    const { registrationNumber } = await register(context, { email, prefix: 'nojs', t });
    t.diagnostic(`registered ${email} as ${registrationNumber}`);
    assertStored(email, registrationNumber);
  } finally {
    await context.close();
  }
});
