// The console's screens (/app/) in headless Chromium, driven by playwright-core: one browser per
// run, a fresh context (cookies, viewport) per scenario. Node's test runner runs this file; the
// Rust test `browser` (tests/browser/main.rs) serves the app (the real .wasm in mio-host, on a
// fake Stripe), sets up through the HTTP API what the scenarios need, and passes it here:
//
//   MIO_BASE_URL            http://127.0.0.1:<port> of the app
//   MIO_A_TOKEN             account A ("Sparkle Cleaning"): no automation rules yet
//   MIO_A_CUSTOMER          its customer Margaret Hamilton
//   MIO_B_TOKEN             account B ("Shine Cleaning"): MioPay on, payment "24 hours before
//                           the visit starts", a rating asked 2 hours after completion
//   MIO_B_CARD_CUSTOMER     Ada Lovelace: a Visa ending 4242 on file; the tick charged her visit
//   MIO_B_NO_CARD_CUSTOMER  Grace Hopper: no card; the tick's charge of her visit failed
//   MIO_B_TOGGLE_CUSTOMERS  "<id>,<id>": Katherine Johnson and Dorothy Vaughan, nothing else
//   MIO_B_BOOKING           Ada's visit in three days, its charge still planned
//   MIO_C_TOKEN             account C ("Plenty Cleaning"): Client 001 … Client 120
//   MIO_CHROMIUM            the Chromium binary (/usr/bin/chromium, Debian's)
//   MIO_SCREENSHOT_DIR      optional: where scenario g saves a PNG of each screen
//                           (scripts/screenshots: docs/screens); unset, a temporary directory
//
// The scenarios hold the console to its contract through roles and labels (getByRole,
// getByLabel: names match exactly), not markup. A failure names the page it was on and what
// that page read. Run one scenario with MIO_BROWSER_TESTS='^c\.' cargo nextest run -E
// 'binary(browser)'.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

/** The variable `name`, which the Rust test sets. */
function given(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: these scenarios run through the Rust test, which serves the app and ` +
        `sets it up (cargo nextest run -E 'binary(browser)')`,
    );
  }
  return value;
}

const BASE = given('MIO_BASE_URL');
const A = { token: given('MIO_A_TOKEN'), customer: given('MIO_A_CUSTOMER') };
const B = {
  token: given('MIO_B_TOKEN'),
  cardCustomer: given('MIO_B_CARD_CUSTOMER'),
  noCardCustomer: given('MIO_B_NO_CARD_CUSTOMER'),
  toggleCustomers: given('MIO_B_TOGGLE_CUSTOMERS').split(','),
  booking: given('MIO_B_BOOKING'),
};
const C = { token: given('MIO_C_TOKEN') };
const CHROMIUM = given('MIO_CHROMIUM');
const SCREENSHOT_DIR = process.env.MIO_SCREENSHOT_DIR || '';

// Names as tests/browser/main.rs creates them.
const MARGARET = 'Margaret Hamilton';
const ADA = 'Ada Lovelace';
const GRACE = 'Grace Hopper';
const KATHERINE = 'Katherine Johnson';
const DOROTHY = 'Dorothy Vaughan';

/** How long one action or navigation may wait (the app answers in milliseconds). */
const ACTION_TIMEOUT = 20_000;
/** How long one scenario may take. */
const SCENARIO_TIMEOUT = 180_000;
/** The desktop viewport, as the screenshots show it. */
const VIEWPORT = { width: 1000, height: 700 };
/** The narrowest phone the screens must fit without horizontal scrolling. */
const PHONE_WIDTH = 375;

/** axe-core's own source, evaluated in each page (a strict CSP forbids a script tag). */
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The links of the main navigation, on every signed-in page. */
const NAV = [
  ['Customers', '/app/customers'],
  ['Bookings', '/app/bookings'],
  ['Activity', '/app/activity'],
  ['Settings', '/app/settings/automations'],
];

const NO_RULES = 'No automation rules are set for this account yet.';
const SET_RULES = 'Set automation rules for all customers';

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    // Without the background-networking flags Chromium keeps trying to reach Google's hosts,
    // which this closed network refuses, and hangs.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
});

/**
 * A scenario: `body` gets a page in a fresh context (and `newPage` for more contexts, as other
 * people), all closed afterwards. A failure adds where the page was and what it read.
 */
function scenario(name, body) {
  test(name, { timeout: SCENARIO_TIMEOUT }, async () => {
    const contexts = [];
    const newPage = async (viewport = VIEWPORT) => {
      const context = await browser.newContext({ baseURL: BASE, viewport, deviceScaleFactor: 1 });
      context.setDefaultTimeout(ACTION_TIMEOUT);
      context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
      contexts.push(context);
      return context.newPage();
    };
    const page = await newPage();
    try {
      await body({ page, newPage });
    } catch (error) {
      const where = await Promise.all(contexts.flatMap((c) => c.pages()).map(describe));
      if (error instanceof Error) {
        // The runner prints the stack, which was written with the message as it was then.
        error.message += where.join('');
        error.stack = `${error.stack ?? ''}${where.join('')}`;
      }
      throw error;
    } finally {
      await Promise.all(contexts.map((c) => c.close()));
    }
  });
}

/** Where `page` is and what it reads, for a failure's message. */
async function describe(page) {
  let text;
  try {
    text = await page.locator('body').innerText({ timeout: 2_000 });
  } catch (error) {
    text = `(unreadable: ${error.message.split('\n')[0]})`;
  }
  const lines = text
    .replace(/\n{2,}/g, '\n')
    .slice(0, 2_500)
    .split('\n');
  return `\n    --- the page at ${page.url()} read:\n${lines.map((l) => `    | ${l}`).join('\n')}`;
}

/** The path `href` (relative or absolute) leads to from `page`. */
function pathOf(href, page) {
  assert.ok(href, 'a link without href');
  return new URL(href, page.url()).pathname;
}

/** Opens `path` and asserts the answer's status (200 unless said). */
async function open(page, path, status = 200) {
  const response = await page.goto(path);
  assert.ok(response, `GET ${path}: no response`);
  assert.equal(response.status(), status, `GET ${path} answered ${response.status()}`);
  return response;
}

/**
 * Clicks `control` (a form's button) and waits until the page its form led to has loaded; the
 * answer to the form's own request (`method`), before any redirect it answered with.
 */
async function submit(page, control, method = 'POST') {
  const answered = page.waitForResponse(
    (r) =>
      r.request().isNavigationRequest() &&
      r.request().method() === method &&
      r.frame() === page.mainFrame(),
  );
  const committed = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame(),
  });
  await control.click();
  const [response] = await Promise.all([answered, committed]);
  await page.waitForLoadState('load');
  return response;
}

/** Waits for the page's h1 `name` (exactly). */
async function heading(page, name) {
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor();
}

/** A button, link or field by its exact name. */
const button = (scope, name) => scope.getByRole('button', { name, exact: true });
const link = (scope, name) => scope.getByRole('link', { name, exact: true });
const field = (scope, label) => scope.getByLabel(label, { exact: true });

/**
 * The layout every signed-in page shares: a banner with the main navigation and "Sign out" (a
 * form POSTing to /app/sign-out), one <main> holding the page's one h1, `h1` if given.
 */
async function assertLayout(page, h1) {
  if (h1) {
    await heading(page, h1);
  } else {
    await page.getByRole('heading', { level: 1 }).first().waitFor();
  }
  assert.equal(await page.locator('main').count(), 1, 'one <main>');
  assert.equal(await page.locator('h1').count(), 1, 'one h1');
  assert.equal(await page.locator('main h1').count(), 1, 'the h1 is inside <main>');
  const banner = page.getByRole('banner');
  const nav = banner.getByRole('navigation', { name: 'Main', exact: true });
  for (const [name, path] of NAV) {
    assert.equal(pathOf(await link(nav, name).getAttribute('href'), page), path, `nav: ${name}`);
  }
  const form = await button(banner, 'Sign out').evaluate(
    (b) => b.form && { method: b.form.method, action: b.form.action },
  );
  assert.ok(form, '"Sign out" submits a form');
  assert.deepEqual([form.method, new URL(form.action).pathname], ['post', '/app/sign-out']);
}

/** Signs in with `token` from the sign-in page; lands on the customer list. */
async function signIn(page, token) {
  await open(page, '/app/');
  await heading(page, 'Sign in');
  await field(page, 'API token').fill(token);
  const answer = await submit(page, button(page, 'Sign in'));
  assert.equal(answer.status(), 303, 'a good token is answered with a redirect');
  assert.equal(new URL(page.url()).pathname, '/app/customers');
  await heading(page, 'Customers');
}

/** The table's rows that hold data (not the header row). */
function dataRows(page) {
  return page.getByRole('row').filter({ has: page.getByRole('cell') });
}

/** The names the customer table links to, in order. */
async function customerNames(page) {
  return (await page.getByRole('table').getByRole('link').allInnerTexts()).map((n) => n.trim());
}

/**
 * The section of the customer's Automations page headed (h2) `title`: the nearest element around
 * the heading that holds its buttons and its "Effective:" line.
 */
function automationSection(page, title) {
  return page
    .getByRole('heading', { level: 2, name: title, exact: true })
    .locator(`xpath=ancestor::*[.//button and contains(normalize-space(.), 'Effective:')][1]`);
}

/** Asserts that `state` ("Inherit", "On" or "Off") is the one pressed button of `section`. */
async function assertPressed(section, state) {
  await section.getByRole('button', { name: state, exact: true, pressed: true }).waitFor();
  for (const name of ['Inherit', 'On', 'Off']) {
    assert.ok(await button(section, name).isVisible(), `a "${name}" button`);
  }
  assert.equal(
    await section.getByRole('button', { pressed: true }).count(),
    1,
    'exactly one state is pressed',
  );
}

/** The action and fields of the form `control` submits, but its `csrf` field. */
async function formWithoutCsrf(control) {
  return control.evaluate((b) => {
    const fields = {};
    for (const [name, value] of new FormData(b.form)) {
      if (name !== 'csrf' && typeof value === 'string') {
        fields[name] = value;
      }
    }
    return { action: b.form.action, fields };
  });
}

/** `GET path` of the API as `token`; the JSON answer (a 200 is asserted). */
async function api(token, path) {
  const response = await fetch(new URL(path, BASE), {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  assert.equal(response.status, 200, `GET ${path}: ${text}`);
  return JSON.parse(text);
}

/** The `automation` ("payment" or "feedback") entry of a customer's automations (API). */
async function automationOf(token, customer, automation) {
  const view = await api(token, `/api/v1/customers/${customer}/automations`);
  const entry = view.automations.find((e) => e.automation === automation);
  assert.ok(entry, `no ${automation} entry in ${JSON.stringify(view)}`);
  return { view, entry };
}

/** The names of the account's customers matching `q` (API). */
async function customersMatching(token, q) {
  const page = await api(token, `/api/v1/customers?q=${encodeURIComponent(q)}&limit=100`);
  return page.data.map((c) => c.name);
}

/** axe-core's serious and critical violations on the page as it is now. */
async function seriousViolations(page) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const run = await window.axe.run(document);
    return {
      engine: run.testEngine.name,
      passes: run.passes.length,
      violations: run.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
      })),
    };
  });
  assert.equal(result.engine, 'axe-core', 'axe-core ran in the page');
  assert.ok(result.passes > 0, 'axe-core checked nothing');
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** How wide the document is at the phone width (its viewport is restored afterwards). */
async function widthOnPhone(page) {
  const viewport = page.viewportSize();
  await page.setViewportSize({ width: PHONE_WIDTH, height: 700 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.setViewportSize(viewport);
  return width;
}

/**
 * Every screen of account B, signed in: its file name for a screenshot, its path, its h1 (null:
 * the contract names none), and what else must be on it.
 */
function screensOfB() {
  return [
    { name: 'customers', path: '/app/customers', h1: 'Customers' },
    { name: 'customer-new', path: '/app/customers/new', h1: null },
    { name: 'customers-import', path: '/app/customers/import', h1: null },
    { name: 'customer', path: `/app/customers/${B.cardCustomer}`, h1: ADA },
    {
      name: 'customer-automations',
      path: `/app/customers/${B.cardCustomer}/automations`,
      h1: `Automations for ${ADA}`,
    },
    { name: 'settings-automations', path: '/app/settings/automations', h1: 'Automation settings' },
    { name: 'activity', path: '/app/activity', h1: 'Automations Activity' },
    { name: 'bookings', path: '/app/bookings', h1: 'Bookings' },
    {
      name: 'booking',
      path: `/app/bookings/${B.booking}`,
      h1: 'Booking',
      check: (page) =>
        page.getByRole('heading', { name: 'Automation runs', exact: true }).waitFor(),
    },
  ];
}

test('0. Chromium loads what the app serves (/api/v1/openapi.json)', async () => {
  const context = await browser.newContext({ baseURL: BASE });
  try {
    const page = await context.newPage();
    const response = await page.goto('/api/v1/openapi.json');
    assert.equal(response?.status(), 200);
    const doc = JSON.parse(await response.text());
    assert.match(doc.openapi, /^3\./);
    assert.ok(doc.paths['/api/v1/customers'], 'the document lists the customer routes');
  } finally {
    await context.close();
  }
});

scenario('a. without rules, the Automations page sends the owner to set them', async ({ page }) => {
  const automations = `/app/customers/${A.customer}/automations`;
  await signIn(page, A.token);
  await open(page, automations);
  await assertLayout(page, `Automations for ${MARGARET}`);
  await page.getByText(NO_RULES, { exact: true }).waitFor();
  const setRules = link(page, SET_RULES);
  assert.equal(pathOf(await setRules.getAttribute('href'), page), '/app/settings/automations');

  await Promise.all([page.waitForURL('**/app/settings/automations'), setRules.click()]);
  await assertLayout(page, 'Automation settings');
  const when = field(page, 'When');
  assert.deepEqual(
    (await when.locator('option').allTextContents()).map((o) => o.trim()),
    ['Before the visit starts', 'After the visit ends', 'After the job is marked complete'],
  );
  assert.deepEqual(
    (await field(page, 'Unit').locator('option').allTextContents()).map((o) =>
      o.trim().toLowerCase(),
    ),
    ['minutes', 'hours', 'days'],
  );
  await page.getByRole('checkbox', { name: 'Ask for a rating', exact: true }).waitFor();
  await page.getByRole('checkbox', { name: 'Charge automatically', exact: true }).check();
  const offset = field(page, 'Offset');
  if ((await offset.inputValue()) === '') {
    await offset.fill('1');
  }
  const saved = await submit(page, button(page, 'Save rules'));
  assert.ok(saved.status() < 400, `saving the rules answered ${saved.status()}`);
  await page.getByText('Rules saved.', { exact: true }).waitFor();
  assert.ok(
    await page.getByRole('checkbox', { name: 'Charge automatically', exact: true }).isChecked(),
  );

  await open(page, automations);
  await heading(page, `Automations for ${MARGARET}`);
  assert.equal(await page.getByText(NO_RULES).count(), 0, 'the prompt is gone');
  await automationSection(page, 'Payment Automation')
    .getByText(/Effective: On\b/)
    .waitFor();
  const { view, entry } = await automationOf(A.token, A.customer, 'payment');
  assert.equal(view.rules_configured, true);
  assert.equal(entry.effective.enabled, true);
});

scenario('b. switching payment off for one customer leaves the others on', async ({ page }) => {
  const [first, second] = B.toggleCustomers;
  const automations = (id) => `/app/customers/${id}/automations`;
  await signIn(page, B.token);
  await open(page, automations(first));
  await assertLayout(page, `Automations for ${KATHERINE}`);
  assert.equal(await page.getByText(NO_RULES).count(), 0, 'account B has rules');
  for (const title of ['Payment Automation', 'Service Feedback Automation']) {
    const section = automationSection(page, title);
    await assertPressed(section, 'Inherit');
    await section.getByText(/Effective: On\b/).waitFor();
    await section.getByRole('heading', { level: 3, name: 'Changes', exact: true }).waitFor();
  }
  const off = button(automationSection(page, 'Payment Automation'), 'Off');
  const form = await off.evaluate(
    (b) => b.form && { method: b.form.method, action: b.form.action },
  );
  assert.deepEqual(form && [form.method, new URL(form.action).pathname], [
    'post',
    `${automations(first)}/payment`,
  ]);
  const answer = await submit(page, off);
  assert.ok(answer.status() < 400, `pressing Off answered ${answer.status()}`);

  await open(page, automations(first));
  const payment = automationSection(page, 'Payment Automation');
  await assertPressed(payment, 'Off');
  await payment.getByText(/Effective: Off\b/).waitFor();
  assert.ok((await payment.getByRole('listitem').count()) >= 1, 'the change is in "Changes"');
  const feedback = automationSection(page, 'Service Feedback Automation');
  await assertPressed(feedback, 'Inherit');
  await feedback.getByText(/Effective: On\b/).waitFor();

  await open(page, automations(second));
  await heading(page, `Automations for ${DOROTHY}`);
  const other = automationSection(page, 'Payment Automation');
  await assertPressed(other, 'Inherit');
  await other.getByText(/Effective: On\b/).waitFor();

  const one = (await automationOf(B.token, first, 'payment')).entry;
  assert.equal(one.override, 'disabled');
  assert.equal(one.effective.enabled, false);
  const two = (await automationOf(B.token, second, 'payment')).entry;
  assert.equal(two.override, 'inherit');
  assert.equal(two.effective.enabled, true);
});

scenario(
  'c. the activity log shows the charged and the failed run, and filters them',
  async ({ page }) => {
    await signIn(page, B.token);
    await open(page, '/app/activity');
    await assertLayout(page, 'Automations Activity');
    const rows = dataRows(page);
    const withStatus = (word) => rows.filter({ has: page.getByText(word, { exact: true }) });
    await withStatus('Success').first().waitFor();
    assert.equal(await withStatus('Success').count(), 1, 'one charge succeeded');
    assert.equal(await withStatus('Failed').count(), 1, 'one charge failed');
    assert.equal(await rows.count(), 2);

    // The failed run says why, the successful one shows its PaymentIntent, each in its details.
    const failed = withStatus('Failed');
    assert.match(await failed.textContent(), /no primary card/i);
    assert.equal(await failed.locator('details').count(), 1, 'the failed row has a <details>');
    const details = withStatus('Success').locator('details');
    assert.equal(await details.count(), 1, 'the charged row has a <details>');
    await details.locator('summary').click();
    const shown = await details.innerText();
    assert.match(shown, /125\.00/, 'the amount is in the details');
    assert.match(shown, /\bpi_\w+/, 'the PaymentIntent is in the details');

    const status = field(page, 'Status');
    assert.deepEqual(
      (await status.locator('option').allTextContents()).map((o) => o.trim()),
      ['All', 'Success', 'Failed', 'Skipped', 'Retrying'],
    );
    assert.deepEqual(
      (await field(page, 'Automation').locator('option').allTextContents()).map((o) => o.trim()),
      ['All', 'Payment', 'Service feedback'],
    );
    for (const label of ['Customer ID', 'From', 'To']) {
      await field(page, label).waitFor();
    }
    assert.equal(await field(page, 'From').getAttribute('type'), 'date');
    assert.equal(await field(page, 'To').getAttribute('type'), 'date');

    // A GET form: each filter is in the URL, and only the matching runs are listed.
    const filter = async (what) => {
      await open(page, '/app/activity');
      await what();
      const answer = await submit(page, button(page, 'Filter'), 'GET');
      assert.equal(answer.status(), 200);
      assert.notEqual(new URL(page.url()).search, '', 'the filters are in the URL');
      return page.url();
    };
    let url = await filter(() => field(page, 'Status').selectOption({ label: 'Failed' }));
    assert.match(url, /failed/i);
    assert.equal(await rows.count(), 1, 'Status Failed: only the failed run');
    assert.equal(await withStatus('Failed').count(), 1);

    url = await filter(() => field(page, 'Status').selectOption({ label: 'Success' }));
    assert.match(url, /success/i);
    assert.equal(await rows.count(), 1, 'Status Success: only the charged run');
    assert.equal(await withStatus('Success').count(), 1);

    url = await filter(() => field(page, 'Customer ID').fill(B.noCardCustomer));
    assert.ok(url.includes(B.noCardCustomer), 'the customer filter is in the URL');
    assert.equal(await rows.count(), 1, "Grace's runs only");
    assert.equal(await withStatus('Failed').count(), 1);

    await filter(() => field(page, 'Automation').selectOption({ label: 'Service feedback' }));
    assert.equal(await rows.count(), 0, 'no rating was asked yet');
  },
);

scenario('d. a CSV import creates the good rows and names the bad line', async ({ page }) => {
  const dir = mkdtempSync(join(tmpdir(), 'mio-import-'));
  const csv = join(dir, 'customers.csv');
  // Line 1 is the header; line 3 has no name.
  writeFileSync(
    csv,
    [
      'name,email,phone,service_address,billing_address,notes',
      'Imogen Cunningham,imogen@example.com,+14165550101,1 Lens Lane,,Front gate',
      ',nameless@example.com,,,,',
      'Ivan Sutherland,ivan@example.com,,,,Sketchpad',
      '',
    ].join('\n'),
  );
  try {
    await signIn(page, A.token);
    await link(page, 'Import customers').click();
    await page.waitForURL('**/app/customers/import');
    await assertLayout(page, null);
    await field(page, 'CSV file').setInputFiles(csv);
    await submit(page, button(page, 'Import'));
    await page.getByText(/Created:\s*2\b/).waitFor();
    await page.getByText(/Updated:\s*0\b/).waitFor();
    const failures = page.getByRole('listitem').filter({ hasText: /^\s*Line \d+:/ });
    assert.deepEqual(
      (await failures.allInnerTexts()).map((t) => t.trim().match(/^Line (\d+):/)[1]),
      ['3'],
      'only line 3 failed',
    );
    const reason = (await failures.first().innerText())
      .trim()
      .replace(/^Line 3:/, '')
      .trim();
    assert.notEqual(reason, '', 'the failed line says why');

    await open(page, '/app/customers');
    const names = await customerNames(page);
    for (const name of ['Imogen Cunningham', 'Ivan Sutherland', MARGARET]) {
      assert.ok(names.includes(name), `${name} is listed: ${names}`);
    }
    assert.deepEqual(await customersMatching(A.token, 'nameless'), [], 'line 3 created nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

scenario("e. sign-in, sign-out, forged forms and another account's customer", async ({ page }) => {
  // The sign-in form: a password field, a CSRF token, POST /app/sign-in.
  await open(page, '/app/');
  await heading(page, 'Sign in');
  const token = field(page, 'API token');
  assert.equal(await token.getAttribute('type'), 'password');
  const form = page.locator('form').filter({ has: button(page, 'Sign in') });
  assert.equal(await form.evaluate((f) => f.method), 'post');
  assert.equal(new URL(await form.evaluate((f) => f.action)).pathname, '/app/sign-in');
  assert.ok(await form.locator('input[type="hidden"][name="csrf"]').inputValue(), 'a csrf value');

  await token.fill('mio_this_token_is_not_valid_0000000000000000');
  const refused = await submit(page, button(page, 'Sign in'));
  assert.equal(refused.status(), 401);
  await page.getByText('That API token is not valid.', { exact: true }).waitFor();
  await field(page, 'API token').waitFor();

  await signIn(page, A.token);
  assert.ok((await customerNames(page)).includes(MARGARET));
  const session = (await page.context().cookies()).filter((c) => c.httpOnly);
  assert.ok(session.length > 0, 'the session cookie is HttpOnly');

  // Another account's customer does not exist for A.
  for (const path of [
    `/app/customers/${B.cardCustomer}`,
    `/app/customers/${B.cardCustomer}/automations`,
  ]) {
    await open(page, path, 404);
    assert.equal(await page.getByText(ADA).count(), 0, `${path} shows nothing of B's`);
  }

  // The console's own forms, posted with the session cookie but without the page's CSRF token
  // (or with a made-up one): refused with 403, nothing written.
  await open(page, '/app/customers/new');
  await field(page, 'Name').fill('Mallory Forged');
  const create = await formWithoutCsrf(button(page, 'Create customer'));
  await open(page, `/app/customers/${A.customer}/automations`);
  const off = await formWithoutCsrf(button(automationSection(page, 'Payment Automation'), 'Off'));
  const signOut = await formWithoutCsrf(button(page.getByRole('banner'), 'Sign out'));
  for (const [what, { action, fields }] of [
    ['creating a customer', create],
    [
      'creating a customer with a made-up token',
      { ...create, fields: { ...create.fields, csrf: 'forged' } },
    ],
    ['switching payment off', off],
    ['signing out', signOut],
  ]) {
    const answer = await page.request.post(action, { form: fields, maxRedirects: 0 });
    assert.equal(answer.status(), 403, `${what} without the page's csrf field: POST ${action}`);
  }
  assert.deepEqual(await customersMatching(A.token, 'Mallory'), [], 'no customer was created');
  const { entry } = await automationOf(A.token, A.customer, 'payment');
  assert.equal(entry.override, 'inherit', 'the forged Off did nothing');
  await open(page, '/app/customers');
  await heading(page, 'Customers');
  assert.ok((await customerNames(page)).includes(MARGARET), 'the forged sign-out did nothing');

  // Sign out: back, reload and a fresh visit all show the sign-in page, nothing of the account.
  const cookies = await page.context().cookies();
  await submit(page, button(page.getByRole('banner'), 'Sign out'));
  await heading(page, 'Sign in');
  const signedOut = async (what) => {
    await page
      .getByRole('heading', { level: 1, name: 'Sign in', exact: true })
      .waitFor({ timeout: 5_000 })
      .catch(() => assert.fail(`after "Sign out", ${what} must show the sign-in page`));
    assert.equal(await page.getByText(MARGARET).count(), 0, `${what}: no customer shown`);
  };
  await page.goBack();
  await signedOut('back');
  await page.reload();
  await signedOut('reload');
  await page.goto('/app/customers');
  await signedOut('a new visit');
  // The old session is over on the server too, not only forgotten by the browser.
  await page.context().addCookies(cookies);
  await page.goto('/app/customers');
  await signedOut('the old session cookie');
});

scenario('f. every screen passes axe-core and fits a 375 px phone', async ({ page, newPage }) => {
  const problems = [];
  const check = async (target, screen) => {
    const violations = await seriousViolations(target);
    for (const v of violations) {
      problems.push(`${screen}: ${v.impact} ${v.id} (${v.help}) at ${v.targets.join(', ')}`);
    }
    const width = await widthOnPhone(target);
    if (width > PHONE_WIDTH) {
      problems.push(`${screen}: ${width} px wide at ${PHONE_WIDTH} px (scrolls sideways)`);
    }
  };

  const visitor = await newPage();
  await open(visitor, '/app/');
  await heading(visitor, 'Sign in');
  await check(visitor, 'sign-in');

  await signIn(page, B.token);
  for (const screen of screensOfB()) {
    await open(page, screen.path);
    await assertLayout(page, screen.h1);
    await screen.check?.(page);
    await check(page, screen.name);
  }
  assert.deepEqual(problems, [], `accessibility and layout problems:\n${problems.join('\n')}`);
});

scenario('g. a screenshot of every screen', async ({ page, newPage }) => {
  const dir = SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'mio-screens-'));
  mkdirSync(dir, { recursive: true });
  const shoot = async (target, name) => {
    const path = join(dir, `${name}.png`);
    await target.screenshot({ path, fullPage: false, animations: 'disabled', caret: 'hide' });
    const png = readFileSync(path);
    assert.equal(png.subarray(1, 4).toString(), 'PNG', `${path} is a PNG`);
    assert.deepEqual(
      [png.readUInt32BE(16), png.readUInt32BE(20)],
      [VIEWPORT.width, VIEWPORT.height],
      `${path} is ${VIEWPORT.width}×${VIEWPORT.height}`,
    );
  };
  try {
    const visitor = await newPage();
    await open(visitor, '/app/');
    await heading(visitor, 'Sign in');
    await shoot(visitor, 'sign-in');

    await signIn(page, B.token);
    for (const screen of screensOfB()) {
      await open(page, screen.path);
      await assertLayout(page, screen.h1);
      await shoot(page, screen.name);
    }
  } finally {
    if (!SCREENSHOT_DIR) {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

scenario(
  'h. the customer list links, searches and pages; a profile shows the card',
  async ({ page, newPage }) => {
    await signIn(page, B.token);
    await assertLayout(page, 'Customers');
    const names = await customerNames(page);
    for (const name of [ADA, GRACE, KATHERINE, DOROTHY]) {
      assert.ok(names.includes(name), `${name} is listed: ${names}`);
    }
    assert.equal(
      pathOf(await link(page.getByRole('table'), ADA).getAttribute('href'), page),
      `/app/customers/${B.cardCustomer}`,
    );
    assert.equal(
      pathOf(await link(page, 'New customer').getAttribute('href'), page),
      '/app/customers/new',
    );
    assert.equal(
      pathOf(await link(page, 'Import customers').getAttribute('href'), page),
      '/app/customers/import',
    );
    assert.equal(await link(page, 'Next page').count(), 0, 'four customers fit one page');

    const search = page.getByRole('search');
    await field(search, 'Search').fill('Grace');
    await submit(page, button(search, 'Search'), 'GET');
    assert.match(page.url(), /Grace/);
    assert.deepEqual(await customerNames(page), [GRACE]);

    // A profile: the name, the card on file, the way to its automations.
    await link(page.getByRole('table'), GRACE).click();
    await page.waitForURL(`**/app/customers/${B.noCardCustomer}`);
    await assertLayout(page, GRACE);
    await page.getByText('No card on file').waitFor();
    await open(page, `/app/customers/${B.cardCustomer}`);
    await assertLayout(page, ADA);
    await page
      .getByText(/Visa\s*•+\s*4242/)
      .first()
      .waitFor();
    for (const name of ['Edit', 'Delete customer']) {
      await link(page, name).waitFor();
    }
    assert.equal(
      pathOf(await link(page, 'Automations').getAttribute('href'), page),
      `/app/customers/${B.cardCustomer}/automations`,
    );

    // 120 customers take more than one page; the next page holds others.
    const plenty = await newPage();
    await signIn(plenty, C.token);
    const first = await customerNames(plenty);
    assert.ok(first.length > 0 && first.length < 120, `one page of the 120: ${first.length}`);
    await link(plenty, 'Next page').click();
    await plenty.waitForLoadState('load');
    await heading(plenty, 'Customers');
    const second = await customerNames(plenty);
    assert.ok(second.length > 0, 'the next page lists customers');
    assert.deepEqual(
      second.filter((n) => first.includes(n)),
      [],
      'no customer on both pages',
    );
  },
);

scenario(
  'i. the new-customer form creates a customer; a bad field answers 400 beside it, as the API does',
  async ({ page }) => {
    await signIn(page, A.token);
    await link(page, 'New customer').click();
    await page.waitForURL('**/app/customers/new');
    await assertLayout(page, null);
    const create = button(page, 'Create customer');

    // The server's own validation, past the browser's: an empty name.
    await create.evaluate((b) => {
      b.form.noValidate = true;
    });
    await field(page, 'Email').fill('hedy@example.com');
    const refused = await submit(page, create);
    // The status the API answers for a refused customer (its validation problem).
    assert.equal(refused.status(), 400);
    await button(page, 'Create customer').waitFor();
    const beside = await field(page, 'Name').evaluate((input) => {
      const text = (el) => (el?.textContent ?? '').replace(/\s+/g, ' ').trim();
      const ids = (name) => (input.getAttribute(name) ?? '').split(/\s+/).filter(Boolean);
      const referenced = [...ids('aria-describedby'), ...ids('aria-errormessage')]
        .map((id) => text(document.getElementById(id)))
        .join(' ');
      const label = text(input.labels?.[0]);
      const container = input.closest('label') ?? input.parentElement;
      const around =
        container && container.tagName !== 'FORM' ? text(container).replace(label, '') : '';
      return `${referenced} ${around} ${text(input.nextElementSibling)}`.trim();
    });
    assert.notEqual(beside, '', 'an error message beside the Name field');
    assert.equal(
      await field(page, 'Email').inputValue(),
      'hedy@example.com',
      'what was typed is kept',
    );
    assert.deepEqual(await customersMatching(A.token, 'hedy'), [], 'nothing was created');

    await field(page, 'Name').fill('Hedy Lamarr');
    await field(page, 'Phone').fill('+14165550142');
    await field(page, 'Service address').fill('5 Frequency Hop, Toronto ON');
    await field(page, 'Billing address').fill('PO Box 1942, Toronto ON');
    await field(page, 'Notes').fill('Prefers mornings.');
    await page.getByRole('checkbox', { name: 'E-mail notifications', exact: true }).check();
    await page.getByRole('checkbox', { name: 'SMS notifications', exact: true }).check();
    const created = await submit(page, button(page, 'Create customer'));
    assert.equal(created.status(), 303);
    const id = new URL(page.url()).pathname.match(/^\/app\/customers\/(cus_\w+)$/)?.[1];
    assert.ok(id, `the answer leads to the new customer's profile, not ${page.url()}`);
    await assertLayout(page, 'Hedy Lamarr');
    const customer = await api(A.token, `/api/v1/customers/${id}`);
    assert.equal(customer.email, 'hedy@example.com');
    assert.equal(customer.phone, '+14165550142');
    assert.equal(customer.notes, 'Prefers mornings.');
    assert.deepEqual(customer.notifications, { email: true, sms: true });

    // The same form sent again (a double click, a reload after a lost answer) creates nothing
    // more: it carries the key the form was shown with, and leads to the same customer.
    const again = await page.request.post(created.request().url(), {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      data: created.request().postData(),
      maxRedirects: 0,
    });
    assert.equal(again.status(), 303);
    assert.equal(new URL(again.headers().location, page.url()).pathname, `/app/customers/${id}`);
    assert.equal((await customersMatching(A.token, 'hedy')).length, 1, 'one Hedy, not two');
  },
);

scenario(
  'j. the new-booking form books in the account time zone, once even when sent twice, and repeats',
  async ({ page }) => {
    await signIn(page, A.token);
    await open(page, `/app/bookings/new?customer_id=${A.customer}`);
    await assertLayout(page, 'New booking');
    const bookingsOf = async () =>
      (await api(A.token, `/api/v1/bookings?customer_id=${A.customer}&limit=200`)).data.filter(
        (b) => b.service_type.startsWith('Window wash'),
      );
    assert.deepEqual(await bookingsOf(), []);

    // 09:30 on 2027-03-10 in America/Toronto (the account's zone; still EST) is 14:30 UTC.
    await field(page, 'Service type').fill('Window wash');
    await field(page, 'Start').fill('2027-03-10T09:30');
    await field(page, 'End').fill('2027-03-10T11:30');
    await field(page, 'Amount').fill('125.50');
    await field(page, 'Currency').fill('usd');
    const created = await submit(page, button(page, 'Create booking'));
    assert.equal(created.status(), 303);
    const id = new URL(page.url()).pathname.match(/^\/app\/bookings\/(bkg_\w+)$/)?.[1];
    assert.ok(id, `the answer leads to the new booking's page, not ${page.url()}`);
    await assertLayout(page, 'Booking');
    await page.getByText('125.50 USD').first().waitFor();
    const booking = await api(A.token, `/api/v1/bookings/${id}`);
    const instant = (text) => new Date(text).toISOString();
    assert.equal(instant(booking.start_at), '2027-03-10T14:30:00.000Z');
    assert.equal(instant(booking.end_at), '2027-03-10T16:30:00.000Z');
    assert.equal(booking.amount_cents, 12550);
    assert.equal(booking.currency, 'usd');

    // Sent again with the key it was shown with: the same booking, not a second one to charge.
    const again = await page.request.post(created.request().url(), {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      data: created.request().postData(),
      maxRedirects: 0,
    });
    assert.equal(again.status(), 303);
    assert.equal(new URL(again.headers().location, page.url()).pathname, `/app/bookings/${id}`);
    assert.equal((await bookingsOf()).length, 1, 'one booking, not two');

    // A repeating booking: one booking per visit.
    await open(page, `/app/bookings/new?customer_id=${A.customer}`);
    await field(page, 'Service type').fill('Window wash weekly');
    await field(page, 'Start').fill('2027-04-05T10:00');
    await field(page, 'End').fill('2027-04-05T11:00');
    await field(page, 'Amount').fill('80');
    await field(page, 'Currency').fill('usd');
    await field(page, 'Repeats').selectOption('weekly');
    await field(page, 'Number of visits').fill('3');
    assert.equal((await submit(page, button(page, 'Create booking'))).status(), 303);
    const weekly = (await bookingsOf()).filter((b) => b.service_type === 'Window wash weekly');
    // 10:00 in Toronto is 14:00 UTC after the switch to daylight time (2027-03-14).
    assert.deepEqual(
      weekly.map((b) => instant(b.start_at)),
      ['2027-04-05T14:00:00.000Z', '2027-04-12T14:00:00.000Z', '2027-04-19T14:00:00.000Z'],
    );
    assert.equal(new Set(weekly.map((b) => b.series_id)).size, 1, 'one series');
  },
);
