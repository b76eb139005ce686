const { test, expect } = require('@playwright/test');
const { PASSWORD, uniqueEmail, watchErrors, signup } = require('./helpers');

// Darkroom opened over plain http by a name that is not localhost, as on a home network
// (http://192.168.1.10:3000): the page is not a secure context, so WebCrypto is missing.
const lan = process.env.DARKROOM_E2E_LAN_URL;

/** A PNG of random pixels (so it barely compresses): `edge`² pixels, about 4·edge² bytes. */
async function noisePng(edge) {
  const canvas = document.createElement('canvas');
  canvas.width = edge;
  canvas.height = edge;
  const ctx = canvas.getContext('2d');
  const pixels = ctx.createImageData(edge, edge);
  for (let i = 0; i < pixels.data.length; i += 1) pixels.data[i] = (Math.random() * 256) | 0;
  ctx.putImageData(pixels, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  return [...new Uint8Array(await blob.arrayBuffer())];
}

test('uploads work from a plain-http origin that is not localhost', async ({ page }) => {
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('lan'), PASSWORD, lan);
  expect(new URL(page.url()).hostname).toBe('darkroom.test');
  expect(await page.evaluate(() => window.isSecureContext)).toBe(false);
  expect(await page.evaluate(() => typeof (window.crypto && window.crypto.subtle))).toBe('undefined');

  // Larger than one hashing slice (2 MiB), so the checksum spans several reads of the file.
  const bytes = await page.evaluate(noisePng, 1000);
  expect(bytes.length).toBeGreaterThan(3 * 1024 * 1024);
  const issued = page.waitForResponse((r) => r.url().endsWith('/api/uploads/issue'));
  await page.locator('#upload-input').setInputFiles({ name: 'lan.png', mimeType: 'image/png', buffer: Buffer.from(bytes) });
  expect((await issued).status()).toBe(200);
  await expect(page.getByTestId('image-tile')).toHaveCount(1, { timeout: 30_000 });
  const tile = page.getByTestId('image-tile');
  await expect(tile).toHaveCount(1);
  await expect(tile.getByTestId('image-size')).toContainText('1000 × 1000');
  await expect(tile.locator('img')).toHaveJSProperty('naturalWidth', 1000);
  expect(errors).toEqual([]);
});
