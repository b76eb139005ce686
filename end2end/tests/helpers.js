const { expect } = require('@playwright/test');

const PASSWORD = 'correct horse battery';

function uniqueEmail(tag) {
  return `${tag}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

function falKey(scope) {
  const rand = () => Math.random().toString(36).slice(2, 10);
  return `${scope}-${rand()}:${rand()}${rand()}${rand()}`;
}

/**
 * Collects console errors and uncaught exceptions (CSP violations, hydration panics). The
 * browser also logs every 4xx answer as a failed resource; those are the app's deliberate
 * refusals (wrong password, validation) and are asserted on directly by the tests instead.
 */
function watchErrors(page) {
  const errors = [];
  const refusal = /^Failed to load resource: the server responded with a status of 4\d\d/;
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !refusal.test(msg.text())) errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(String(err)));
  return errors;
}

async function hydrated(page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

/** Signs up through the form; `base` is the server's URL when it is not the default one. */
async function signup(page, email, password = PASSWORD, base = '') {
  await page.goto(`${base}/signup`);
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Confirm password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page).toHaveURL(/\/create$/);
}

/** Saves a fal key through the Account tab. */
async function saveKey(page) {
  await tab(page, 'Account').click();
  await page.getByLabel('Your fal key').fill(falKey('api'));
  await page.getByRole('button', { name: 'Save key' }).click();
  await expect(page.getByTestId('notice')).toContainText('Key saved');
}

/** Starts a job from the page itself (same session, same origin), as the Create tab would. */
async function generate(page, model, prompt) {
  const answer = await page.evaluate(
    async ([model, prompt]) => {
      const response = await fetch('/api/jobs/create', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ model, params: { prompt }, images: [] }),
      });
      return { status: response.status, body: await response.json() };
    },
    [model, prompt],
  );
  expect(answer.status).toBe(200);
  return answer.body.id;
}

/** Logs in through the form; the page then goes where the login sends it. */
async function login(page, email, password = PASSWORD) {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/**
 * Makes the account `email` an admin with the server's own CLI, on the test server's data, as an
 * operator would; the role applies from the account's next login.
 */
function promote(email) {
  const path = require('path');
  const repo = path.resolve(__dirname, '..', '..');
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
  const bin = process.env.DARKROOM_BIN || path.join(targetDir, 'debug', 'darkroom');
  require('child_process').execFileSync(bin, ['user', 'promote', email], {
    env: { ...process.env, DARKROOM_DATA_DIR: process.env.DARKROOM_E2E_DATA },
    stdio: 'pipe',
  });
}

/** A PNG of `width` × `height` drawn by the page's own canvas, as a Buffer. */
async function png(page, width, height) {
  const bytes = await page.evaluate(
    async ([w, h]) => {
      const canvas = document.createElement('canvas');
      canvas.width = w;
      canvas.height = h;
      canvas.getContext('2d').fillRect(0, 0, w / 2, h / 2);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
      return [...new Uint8Array(await blob.arrayBuffer())];
    },
    [width, height],
  );
  return Buffer.from(bytes);
}

/** A tab of the main navigation (other links may share its name). */
function tab(page, name) {
  return page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });
}

module.exports = { PASSWORD, uniqueEmail, falKey, watchErrors, hydrated, signup, login, promote, saveKey, generate, tab, png };
