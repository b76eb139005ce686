const { test, expect } = require('@playwright/test');
const { uniqueEmail, watchErrors, hydrated, signup, login, promote, saveKey, generate, tab } = require('./helpers');

const fakeFal = `http://127.0.0.1:${Number(process.env.E2E_PORT || 3100) + 2}`;

/** A second browser signed in as a new admin. */
async function adminBrowser(browser, baseURL) {
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  const email = uniqueEmail('admin');
  await signup(page, email);
  promote(email);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await login(page, email);
  await expect(page).toHaveURL(/\/create$/);
  return { context, page, email };
}

/** The admin's page of the account `email`, found through the users list's search. */
async function accountPage(page, email) {
  await page.goto(`/admin?q=${encodeURIComponent(email)}`);
  await page.getByRole('link', { name: email }).click();
  await expect(page.getByTestId('admin-user')).toContainText(email);
  await hydrated(page);
}

test('an admin sees a gallery only after giving a reason; the audit log and the owner both see every view', async ({ page, browser, baseURL }) => {
  const ownerErrors = watchErrors(page);
  const owner = uniqueEmail('owner');
  await signup(page, owner);
  await saveKey(page);
  await generate(page, 'fal-ai/flux/dev', 'a lighthouse at dusk');
  await tab(page, 'Gallery').click();
  await expect(page.getByTestId('gallery-tile')).toHaveCount(1, { timeout: 20_000 });
  const resultId = await page.getByTestId('gallery-tile').getAttribute('data-id');

  const admin = await adminBrowser(browser, baseURL);
  const errors = watchErrors(admin.page);
  await accountPage(admin.page, owner);
  await admin.page.getByTestId('open-gallery').click();

  // Nothing of the account before a reason, and a reason that says nothing is refused.
  await expect(admin.page.getByTestId('reason-form')).toBeVisible();
  await hydrated(admin.page);
  await expect(admin.page.getByTestId('gallery-tile')).toHaveCount(0);
  await expect(admin.page.locator('body')).not.toContainText('lighthouse');
  await admin.page.getByTestId('access-reason').fill('   looking   ');
  await admin.page.getByTestId('access-reason').evaluate((el) => el.removeAttribute('minlength'));
  await admin.page.getByTestId('access-open').click();
  await expect(admin.page.locator('#access-reason-hint')).toContainText('Say why you need to look');
  await expect(admin.page.getByTestId('gallery-tile')).toHaveCount(0);

  const reason = 'Support request #88: the owner reports a missing result';
  await admin.page.getByTestId('access-reason').fill(reason);
  await admin.page.getByTestId('access-open').click();
  await expect(admin.page.getByTestId('access-reason-shown')).toHaveText(reason);
  await expect(admin.page.getByTestId('access-until')).toContainText('Access ends');

  // The same grid and viewer, read-only.
  const tile = admin.page.getByTestId('gallery-tile');
  await expect(tile).toHaveCount(1);
  await expect(tile).toHaveAttribute('data-id', resultId);
  await expect(tile.getByTestId('favorite')).toHaveCount(0);
  await expect(tile.getByTestId('select')).toHaveCount(0);
  await tile.locator('a.tile-open').click();
  await expect(admin.page.getByTestId('viewer-prompt')).toHaveText('a lighthouse at dusk');
  await expect(admin.page.getByTestId('viewer-media')).toHaveJSProperty('complete', true);
  await expect(admin.page.getByTestId('viewer-favorite')).toHaveCount(0);
  await expect(admin.page.getByTestId('viewer-trash')).toHaveCount(0);
  await admin.page.keyboard.press('Escape');

  // The audit log shows the view with the reason.
  await admin.page.goto('/admin/audit?action=admin.asset_viewed');
  const entry = admin.page.getByTestId('audit-entry').first();
  await expect(entry).toHaveAttribute('data-action', 'admin.asset_viewed');
  await expect(entry).toContainText(reason);
  await expect(entry).toContainText(resultId);

  // "Done looking" ends the access: the reason is asked again, nothing is shown.
  await admin.page.goBack();
  await expect(admin.page.getByTestId('access-end')).toBeVisible();
  await hydrated(admin.page);
  await admin.page.getByTestId('access-end').click();
  await expect(admin.page.getByTestId('reason-form')).toBeVisible();
  await expect(admin.page.getByTestId('gallery-tile')).toHaveCount(0);

  // The owner's Account tab lists the access, its reason and the result it opened.
  await tab(page, 'Account').click();
  const access = page.getByTestId('access-entry');
  await expect(access).toHaveCount(1);
  await expect(access.getByTestId('access-admin')).toHaveText(admin.email);
  await expect(access.getByTestId('access-reason')).toHaveText(reason);
  await expect(access.getByTestId('access-counts')).toContainText('1 result opened');
  await access.getByTestId('access-opened').click();
  await expect(page.getByTestId('viewer-prompt')).toHaveText('a lighthouse at dusk');

  expect(errors).toEqual([]);
  expect(ownerErrors).toEqual([]);
  await admin.context.close();
});

test('an admin retries a failed job from the jobs page and it succeeds', async ({ page, browser, baseURL }) => {
  const owner = uniqueEmail('failing');
  await signup(page, owner);
  await saveKey(page);
  const scripted = await page.request.post(`${fakeFal}/_fake/script`, { data: { outcome: 'content_policy' } });
  expect(scripted.status()).toBe(204);
  const jobId = await generate(page, 'fal-ai/flux/dev', 'a refused picture');
  await tab(page, 'Create').click();
  const card = page.locator(`[data-testid=job][data-id="${jobId}"]`);
  await expect(card.getByTestId('job-status')).toHaveText(/Failed/, { timeout: 20_000 });

  const admin = await adminBrowser(browser, baseURL);
  await admin.page.goto(`/admin/jobs?state=failed&user=${encodeURIComponent(owner)}`);
  await hydrated(admin.page);
  const row = admin.page.locator(`[data-testid=admin-job][data-id="${jobId}"]`);
  await expect(row).toContainText('content_policy');
  await row.getByTestId('admin-retry').click();
  await expect(admin.page.getByTestId('notice')).toContainText('Retried');

  // The owner's open page follows the job live to its result.
  await expect(card.getByTestId('job-status')).toHaveText('Done', { timeout: 20_000 });
  await expect(card.getByTestId('result-image')).toHaveCount(1);
  await admin.page.goto(`/admin/jobs?user=${encodeURIComponent(owner)}`);
  await expect(admin.page.locator(`[data-testid=admin-job][data-id="${jobId}"]`)).toHaveAttribute('data-state', 'succeeded');
  await admin.context.close();
});

test("a disabled account's open page goes to the login page at once", async ({ page, browser, baseURL }) => {
  const owner = uniqueEmail('disabled');
  await signup(page, owner);
  await hydrated(page);

  const admin = await adminBrowser(browser, baseURL);
  await accountPage(admin.page, owner);
  await admin.page.getByTestId('toggle-disabled').click();
  await expect(admin.page.getByTestId('user-status')).toHaveText('disabled');

  // No reload, no click: the page's live stream is told and the page leaves.
  await expect(page).toHaveURL(/\/login\?next=%2Fcreate$/);
  await login(page, owner);
  await expect(page.getByTestId('notice')).toContainText('This account has been disabled.');
  await admin.context.close();
});
