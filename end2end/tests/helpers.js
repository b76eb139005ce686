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

module.exports = { PASSWORD, uniqueEmail, falKey, watchErrors, hydrated, signup, tab, png };
