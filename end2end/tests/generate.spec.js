const { test, expect } = require('@playwright/test');
const { uniqueEmail, falKey, watchErrors, signup, tab } = require('./helpers');

async function selfiePng() {
  const canvas = document.createElement('canvas');
  canvas.width = 24;
  canvas.height = 32;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#c98b5b';
  ctx.fillRect(0, 0, 24, 32);
  ctx.fillStyle = '#2a1a10';
  ctx.fillRect(0, 0, 24, 8);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  return [...new Uint8Array(await blob.arrayBuffer())];
}

/** Records every status text the jobs list shows, so the test sees states it cannot catch live. */
async function recordJobStatuses(page) {
  await page.evaluate(() => {
    window.__jobStatuses = [];
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('[data-testid=job-status]')) {
        const text = el.textContent;
        if (window.__jobStatuses[window.__jobStatuses.length - 1] !== text) window.__jobStatuses.push(text);
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

test('a selfie and a hairstyle become a result from our own bucket, with live status', async ({ page }) => {
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('tryon'));
  await tab(page, 'Account').click();
  await page.getByLabel('Your fal key').fill(falKey('api'));
  await page.getByRole('button', { name: 'Save key' }).click();
  await expect(page.getByTestId('notice')).toContainText('Key saved');
  await tab(page, 'Create').click();
  // No public URL here: fal could not reach this server, so inputs go by way of fal's storage.
  await expect(page.getByTestId('input-policy')).toContainText("uploaded to fal's storage");

  const png = await page.evaluate(selfiePng);
  await page.locator('#upload-input').setInputFiles({ name: 'selfie.png', mimeType: 'image/png', buffer: Buffer.from(png) });
  await expect(page.getByTestId('image-tile')).toHaveCount(1);
  await expect(page.getByTestId('upload-item')).toHaveCount(0);

  await expect(page.getByTestId('model')).toHaveValue('fal-ai/nano-banana/edit');
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('generate-error')).toContainText('is required');

  await page.getByTestId('preset').filter({ hasText: 'Curly afro' }).click();
  await expect(page.getByTestId('prompt')).toHaveValue(/curly afro/);
  // The price before Generate, from fal's prices with the user's key; it follows the inputs.
  await expect(page.getByTestId('estimate')).toHaveText('≈ $0.04');
  await page.getByTestId('num_images').fill('2');
  await expect(page.getByTestId('estimate')).toHaveText('≈ $0.08');
  await page.getByTestId('num_images').fill('');
  await expect(page.getByTestId('estimate')).toHaveText('≈ $0.04');
  // The only image is chosen already; without it, the model has nothing to work on.
  await expect(page.getByTestId('use-image')).toBeChecked();
  await page.getByTestId('use-image').uncheck();
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('generate-error')).toContainText('needs an image');

  await page.getByTestId('use-image').check();
  await expect(page.getByTestId('chosen-images')).toContainText('1 image chosen');
  await recordJobStatuses(page);
  await page.getByTestId('generate').click();

  const job = page.getByTestId('job').first();
  await expect(job.getByTestId('job-status')).toHaveText('Done', { timeout: 20_000 });
  const statuses = await page.evaluate(() => window.__jobStatuses);
  // The job was shown while it ran, before it was done, without a reload.
  expect(statuses.indexOf('Done')).toBeGreaterThan(0);
  expect(statuses.some((s) => s === 'Queued' || s.startsWith('In queue') || s.startsWith('Generating'))).toBe(true);

  await expect(job.getByTestId('job-estimate')).toHaveText('≈ $0.04 estimated');
  const result = job.getByTestId('result-image');
  await expect(result).toHaveCount(1);
  await expect(result).toHaveJSProperty('complete', true);
  expect(await result.evaluate((img) => img.naturalWidth)).toBeGreaterThan(0);
  const src = await result.getAttribute('src');
  const fakeFalPort = String(Number(process.env.E2E_PORT || 3100) + 2);
  expect(new URL(src).port).not.toBe(fakeFalPort);
  // Served by our own storage, on the app's own origin, through a signed link.
  expect(new URL(src).origin).toBe(new URL(page.url()).origin);
  expect(new URL(src).pathname.startsWith('/darkroom-results/')).toBe(true);
  expect(new URL(src).searchParams.get('X-Amz-Signature')).toBeTruthy();
  const full = await job.locator('a').first().getAttribute('href');
  const bytes = await (await page.request.get(full)).body();
  expect(bytes.subarray(1, 4).toString()).toBe('PNG');

  await page.reload();
  await expect(page.getByTestId('job').first().getByTestId('job-status')).toHaveText('Done');
  expect(errors).toEqual([]);
});
