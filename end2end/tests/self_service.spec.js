const fs = require('fs');
const path = require('path');
const { test, expect } = require('@playwright/test');
const { PASSWORD, uniqueEmail, watchErrors, hydrated, signup, login, tab, png } = require('./helpers');

const NEW_PASSWORD = 'a brand new passphrase 42';

/** Every path under `dir`, recursively. */
function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? [full, ...walk(full)] : [full];
  });
}

test('a password change signs out the other browser, which sees itself listed and ended', async ({ page, browser, baseURL }) => {
  const errors = watchErrors(page);
  const email = uniqueEmail('password');
  await signup(page, email);

  const other = await browser.newContext({ baseURL });
  const laptop = await other.newPage();
  await login(laptop, email, PASSWORD);
  await expect(laptop).toHaveURL(/\/create$/);

  await tab(page, 'Account').click();
  await hydrated(page);
  await expect(page.getByTestId('session')).toHaveCount(2);
  await expect(page.getByTestId('session').filter({ hasText: 'This browser' })).toHaveCount(1);

  await page.locator('#current-password').fill('not my password');
  await page.locator('#new-password').fill(NEW_PASSWORD);
  await page.locator('#confirm-password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.locator('#current-hint')).toHaveText('That is not your current password.');

  await page.locator('#current-password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByTestId('notice').first()).toHaveText('Password changed. Your other session was signed out.');
  await expect(page.getByTestId('session')).toHaveCount(1);

  // The other browser's next page load finds it logged out.
  await laptop.goto('/account');
  await expect(laptop).toHaveURL(/\/login\?next=%2Faccount$/);
  await login(laptop, email, PASSWORD);
  await expect(laptop.getByTestId('notice')).toHaveText('Wrong email or password.');
  await login(laptop, email, NEW_PASSWORD);
  await expect(laptop).toHaveURL(/\/create$/);

  // And now this browser ends the laptop's session from the list.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('session')).toHaveCount(2);
  await page.getByTestId('session').filter({ hasNotText: 'This browser' }).getByRole('button', { name: 'End session' }).click();
  await expect(page.getByTestId('session')).toHaveCount(1);
  await laptop.goto('/create');
  await expect(laptop).toHaveURL(/\/login\?next=%2Fcreate$/);
  await other.close();
  expect(errors).toEqual([]);
});

test('the export downloads a zip; deleting the account says what goes, then nothing of it is left to reach', async ({ page }) => {
  const errors = watchErrors(page);
  const email = uniqueEmail('delete');
  await signup(page, email);
  await page.locator('#upload-input').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: await png(page, 16, 16) });
  const img = page.getByTestId('image-tile').locator('img');
  await expect(img).toHaveJSProperty('naturalWidth', 16);
  const src = await img.getAttribute('src');
  expect((await page.request.get(src)).status()).toBe(200);
  // The embedded storage keeps objects as files in the server's data directory, named by key.
  const userId = new URL(src).pathname.split('/')[3];
  const stored = () => walk(process.env.DARKROOM_E2E_DATA).filter((p) => p.includes(userId));
  expect(stored().length).toBeGreaterThan(0);

  await tab(page, 'Account').click();
  await hydrated(page);
  const download = page.waitForEvent('download');
  await page.getByTestId('export').click();
  const zip = await download;
  expect(zip.suggestedFilename()).toMatch(/^darkroom-export-\d{4}-\d{2}-\d{2}\.zip$/);
  const archive = fs.readFileSync(await zip.path());
  expect(archive.subarray(0, 4)).toEqual(Buffer.from([0x50, 0x4b, 0x03, 0x04]));
  expect(archive.includes(Buffer.from('manifest.json'))).toBe(true);
  await expect(page.getByTestId('deletion-contents')).toContainText(`Deleting ${email} removes`);
  await expect(page.getByTestId('deletion-contents')).toContainText('1 uploaded image');

  await page.locator('#delete-password').fill(PASSWORD);
  await page.locator('#delete-confirm').fill('yes');
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page.locator('#delete-confirm-hint')).toHaveText('Type DELETE to confirm.');

  await page.locator('#delete-confirm').fill('DELETE');
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page).toHaveURL(/\/signup\?deleted=1$/);
  await expect(page.getByTestId('notice')).toHaveText('Your account and everything in it have been deleted.');

  // The image's signed link, still within its lifetime, now finds nothing, and no file of the
  // account is left in either bucket.
  expect((await page.request.get(src)).status()).toBe(404);
  expect(stored()).toEqual([]);
  await login(page, email, PASSWORD);
  await expect(page.getByTestId('notice')).toHaveText('Wrong email or password.');
  expect(errors).toEqual([]);
});
