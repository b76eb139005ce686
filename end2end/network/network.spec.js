const { test, expect } = require('@playwright/test');
const { uniqueEmail, falKey, watchErrors, signup, tab } = require('../tests/helpers');

// The fake fal, on its own host: what it received and fetched, for comparing bytes and URLs.
const fal = process.env.DARKROOM_NETWORK_FAL;

async function selfiePng() {
  const canvas = document.createElement('canvas');
  canvas.width = 48;
  canvas.height = 64;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#c98b5b';
  ctx.fillRect(0, 0, 48, 64);
  ctx.fillStyle = '#2a1a10';
  ctx.fillRect(0, 0, 48, 16);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  return [...new Uint8Array(await blob.arrayBuffer())];
}

test('sign up, upload, generate through the webhook, view and download, all across the network', async ({ page, request }) => {
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('network'));
  expect(new URL(page.url()).origin).toBe('https://darkroom.test');
  await tab(page, 'Account').click();
  await page.getByLabel('Your fal key').fill(falKey('api'));
  await page.getByRole('button', { name: 'Save key' }).click();
  await expect(page.getByTestId('notice')).toContainText('Key saved');
  await tab(page, 'Create').click();
  await expect(page.getByTestId('input-policy')).toContainText('through private links that expire after 5 minutes');

  const png = await page.evaluate(selfiePng);
  await page.locator('#upload-input').setInputFiles({ name: 'selfie.png', mimeType: 'image/png', buffer: Buffer.from(png) });
  await expect(page.getByTestId('image-tile')).toHaveCount(1);
  const tile = page.getByTestId('image-tile');
  await expect(tile.locator('img')).toHaveJSProperty('naturalWidth', 48);
  expect(new URL(await tile.locator('img').getAttribute('src')).origin).toBe('https://darkroom.test');

  await page.getByTestId('preset').filter({ hasText: 'Curly afro' }).click();
  await page.getByTestId('use-image').check();
  await page.getByTestId('generate').click();
  const job = page.getByTestId('job').first();
  await expect(job.getByTestId('job-status')).toHaveText('Done', { timeout: 60_000 });
  const result = job.getByTestId('result-image');
  await expect(result).toHaveJSProperty('complete', true);
  expect(await result.evaluate((img) => img.naturalWidth)).toBeGreaterThan(0);
  const href = await job.locator('a').first().getAttribute('href');
  expect(new URL(href).origin).toBe('https://darkroom.test');
  // Downloaded by the browser itself, the way the link would.
  const stored = Buffer.from(
    await page.evaluate(async (url) => [...new Uint8Array(await (await fetch(url)).arrayBuffer())], href),
  );

  // What fal saw: the input fetched through the proxy, the webhook delivered through it, and
  // an output whose bytes are the ones Darkroom now serves.
  const seen = await (await request.get(`${fal}/_fake/requests`)).json();
  expect(seen.requests).toHaveLength(1);
  const [sent] = seen.requests;
  expect(sent.webhook).toBe('https://darkroom.test/hooks/fal');
  expect(sent.input_fetches).toHaveLength(1);
  expect(new URL(sent.input_fetches[0].url).origin).toBe('https://darkroom.test');
  expect(sent.input_fetches[0].status).toBe(200);
  expect(seen.deliveries.map((d) => d.status)).toEqual([200]);
  const original = await (await request.get(sent.output.images[0].url)).body();
  expect(Buffer.compare(stored, original)).toBe(0);
  for (const url of [sent.webhook, ...sent.input_fetches.map((f) => f.url), href]) {
    expect(url).not.toMatch(/127\.0\.0\.1|localhost|\[::1\]/);
  }
  expect(errors).toEqual([]);
});
