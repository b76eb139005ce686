const { test, expect } = require('@playwright/test');
const { PASSWORD, uniqueEmail, falKey, watchErrors, hydrated, signup, tab } = require('./helpers');

test('signup, logout, login, then save, test, check credits of and delete a fal key', async ({ page }) => {
  const errors = watchErrors(page);
  const email = uniqueEmail('flow');

  await signup(page, email);
  await expect(page.getByTestId('needs-key')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Generate' })).toBeDisabled();
  await expect(page.getByTestId('who')).toHaveText(email);

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);

  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('not my password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('notice')).toHaveText('Wrong email or password.');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/create$/);

  await tab(page, 'Account').click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('key-status')).toHaveText('No key saved yet.');
  await expect(page.getByRole('button', { name: 'Test key' })).toBeDisabled();

  const apiKey = falKey('api');
  await page.getByLabel('Your fal key').fill(apiKey);
  await page.getByRole('button', { name: 'Save key' }).click();
  await expect(page.getByTestId('key-status')).toContainText(`…${apiKey.slice(-4)}`);
  await expect(page.getByTestId('notice')).toContainText('Key saved');
  await expect(page.locator('#fal-key')).toHaveValue('');
  expect(await page.content()).not.toContain(apiKey);

  await page.getByRole('button', { name: 'Test key' }).click();
  await expect(page.getByTestId('notice')).toHaveText('Key works. fal-ai/nano-banana/edit costs 0.039 USD per image.');

  await page.getByRole('button', { name: 'Credits' }).click();
  await expect(page.getByTestId('notice')).toContainText('needs an ADMIN-scope fal key');

  const adminKey = falKey('admin');
  await page.getByLabel('Replace with a new key').fill(adminKey);
  await page.getByRole('button', { name: 'Replace key' }).click();
  await expect(page.getByTestId('key-status')).toContainText(`…${adminKey.slice(-4)}`);
  await page.getByRole('button', { name: 'Credits' }).click();
  await expect(page.getByTestId('notice')).toHaveText('fal credits: 10.00 USD');

  await tab(page, 'Create').click();
  await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
  await expect(page.getByTestId('needs-key')).toHaveCount(0);

  await tab(page, 'Account').click();
  await page.getByRole('button', { name: 'Delete key' }).click();
  await expect(page.getByTestId('notice')).toHaveText('Key deleted.');
  await expect(page.getByTestId('key-status')).toHaveText('No key saved yet.');
  await expect(page.getByRole('button', { name: 'Credits' })).toBeDisabled();

  // A full reload renders the same state on the server.
  await page.reload();
  await expect(page.getByTestId('key-status')).toHaveText('No key saved yet.');
  expect(await page.content()).not.toContain(adminKey);
  expect(errors).toEqual([]);
});

test('signup validates inline before anything is sent', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/signup');
  await hydrated(page);
  await page.getByLabel('Email').fill('not-an-email');
  await page.getByLabel('Password', { exact: true }).focus();
  await expect(page.locator('#email-hint')).toContainText('does not look like an email');
  await page.getByLabel('Password', { exact: true }).fill('short');
  await expect(page.locator('#password-hint')).toHaveText('5 more characters needed (at least 10).');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await expect(page.locator('#password-hint')).toHaveText('');
  await page.getByLabel('Confirm password').fill(`${PASSWORD}!`);
  await expect(page.locator('#confirm-hint')).toHaveText('The two passwords do not match.');

  await page.getByLabel('Confirm password').fill(PASSWORD);
  await expect(page.locator('#confirm-hint')).toHaveText('');

  // Passes the browser's quick check, fails the server's: the server's message shows inline.
  await page.getByLabel('Email').fill('ada@exa..mple.com');
  await page.getByLabel('Password', { exact: true }).focus();
  await expect(page.locator('#email-hint')).toHaveText('');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.locator('#email-hint')).toHaveText('Enter a valid email address, like name@example.com.');
  await expect(page).toHaveURL(/\/signup$/);
  expect(errors).toEqual([]);
});

test('login works without JavaScript, and pages need an account', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/account');
  await expect(page).toHaveURL(/\/login\?next=%2Faccount$/);

  const email = uniqueEmail('nojs');
  await page.goto('/signup');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Confirm password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page).toHaveURL(/\/create$/);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);

  await page.goto('/login?next=%2Faccount');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('key-status')).toHaveText('No key saved yet.');
  await context.close();
});

test('the app fits a phone screen', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 } });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('phone'));
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await expect(page.getByRole('button', { name: 'Choose images' })).toBeVisible();
  expect(await overflow()).toBeLessThanOrEqual(0);
  await tab(page, 'Account').click();
  await expect(page.getByLabel('Your fal key')).toBeVisible();
  expect(await overflow()).toBeLessThanOrEqual(0);
  expect(errors).toEqual([]);
  await context.close();
});

test('a non-admin gets 403 at /admin; the admin link is only for admins', async ({ page }) => {
  await signup(page, uniqueEmail('plain'));
  await expect(page.getByRole('link', { name: 'Admin' })).toHaveCount(0);
  const response = await page.goto('/admin');
  expect(response.status()).toBe(403);
  await expect(page.getByRole('heading', { name: 'Admins only' })).toBeVisible();
});
