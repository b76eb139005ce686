const { test, expect } = require('@playwright/test');
const { uniqueEmail, falKey, watchErrors, signup, tab, png } = require('./helpers');

/** Signs up, saves a key, opens Create and uploads one photo. */
async function readyToGenerate(page) {
  await signup(page, uniqueEmail('studio'));
  await tab(page, 'Account').click();
  await page.getByLabel('Your fal key').fill(falKey('api'));
  await page.getByRole('button', { name: 'Save key' }).click();
  await expect(page.getByTestId('notice').first()).toContainText('Key saved');
  await tab(page, 'Create').click();
  await page.locator('#upload-input').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: await png(page, 24, 32) });
  await expect(page.getByTestId('image-tile')).toHaveCount(1);
  // The only image is the one to use: no extra step.
  await expect(page.getByTestId('use-image')).toBeChecked();
  await page.getByTestId('preset').first().click();
}

test('on a wide screen the form sits beside the jobs, and a new job shows without scrolling', async ({ page }) => {
  const errors = watchErrors(page);
  await page.setViewportSize({ width: 1280, height: 900 });
  await readyToGenerate(page);

  const form = await page.getByTestId('generate-form').boundingBox();
  const jobs = await page.locator('.studio-jobs').boundingBox();
  expect(jobs.x).toBeGreaterThan(form.x + form.width - 1);
  // What a person types is plain text, not the bold of its label.
  expect(await page.getByTestId('prompt').evaluate((el) => getComputedStyle(el).fontWeight)).toBe('400');
  await expect(page.getByText('Drop images here, paste them, or')).toBeVisible();

  const generate = page.getByTestId('generate');
  await generate.scrollIntoViewIfNeeded();
  const before = await page.evaluate(() => window.scrollY);
  await generate.click();
  const card = page.getByTestId('job').first();
  await expect(card).toBeInViewport();
  expect(await page.evaluate(() => window.scrollY)).toBe(before);
  await expect(card.getByTestId('job-status')).toHaveText('Done', { timeout: 20_000 });
  expect(errors).toEqual([]);
});

test('on a phone, Generate brings the new job into view, and the drop zone speaks touch', async ({ browser, baseURL }) => {
  const context = await browser.newContext({ baseURL, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await readyToGenerate(page);
  await expect(page.getByText('Take a photo or pick one from your library')).toBeVisible();
  await expect(page.getByText('Drop images here, paste them, or')).toBeHidden();

  // The button at the bottom of the screen, the jobs list below it, out of sight.
  await page.getByTestId('generate').evaluate((button) => button.scrollIntoView({ block: 'end' }));
  await expect(page.locator('#jobs-heading')).not.toBeInViewport();
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('job').first()).toBeInViewport();
  await context.close();
  expect(errors).toEqual([]);
});
