const { test, expect } = require('@playwright/test');
const { uniqueEmail, watchErrors, signup, tab, png } = require('./helpers');

const GPS_MARK = 'DARKROOM-GPS-TEST';

/**
 * Runs in the page: draws a 40×20 image, encodes it as JPEG with the browser's own encoder,
 * and splices in an EXIF block with Orientation 6 (rotate 90°) and a GPS IFD holding GPS_MARK.
 */
async function gpsJpeg(mark) {
  const canvas = document.createElement('canvas');
  canvas.width = 40;
  canvas.height = 20;
  const ctx = canvas.getContext('2d');
  const gradient = ctx.createLinearGradient(0, 0, 40, 20);
  gradient.addColorStop(0, '#e2b35b');
  gradient.addColorStop(1, '#1b2433');
  ctx.fillStyle = gradient;
  ctx.fillRect(0, 0, 40, 20);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.9));
  const jpeg = new Uint8Array(await blob.arrayBuffer());

  const bytes = [];
  const u16 = (v) => bytes.push(v & 0xff, (v >> 8) & 0xff);
  const u32 = (v) => bytes.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  const entry = (tag, type, count, value) => { u16(tag); u16(type); u32(count); u32(value); };
  bytes.push(0x49, 0x49, 0x2a, 0x00); u32(8);
  const gpsIfd = 8 + 2 + 12 * 2 + 4;
  u16(2); entry(0x0112, 3, 1, 6); entry(0x8825, 4, 1, gpsIfd); u32(0);
  const data = gpsIfd + 2 + 12 * 2 + 4;
  u16(2); entry(0x0001, 2, 2, 0x4e); entry(0x0012, 2, mark.length + 1, data); u32(0);
  for (const c of mark) bytes.push(c.charCodeAt(0));
  bytes.push(0);
  const exif = [0x45, 0x78, 0x69, 0x66, 0, 0, ...bytes];
  const app1 = [0xff, 0xe1, ((exif.length + 2) >> 8) & 0xff, (exif.length + 2) & 0xff, ...exif];
  return [...jpeg.subarray(0, 2), ...app1, ...jpeg.subarray(2)];
}

/** Records every status text the queue shows, so a test can see progress it cannot catch live. */
async function recordStatuses(page) {
  await page.evaluate(() => {
    window.__statuses = [];
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('[data-testid=upload-status]')) {
        const text = el.textContent;
        if (window.__statuses[window.__statuses.length - 1] !== text) window.__statuses.push(text);
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

test('a GPS-tagged selfie goes straight to storage, shows progress, and is kept without GPS', async ({ page }) => {
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('upload'));
  await expect(page.getByTestId('no-images')).toBeVisible();
  await recordStatuses(page);

  // Keyboard only: Tab to "Choose images", Enter opens the file picker.
  const bytes = await page.evaluate(gpsJpeg, GPS_MARK);
  const chooseImages = page.getByRole('button', { name: 'Choose images' });
  await chooseImages.focus();
  const chooser = page.waitForEvent('filechooser');
  await page.keyboard.press('Enter');
  await (await chooser).setFiles({ name: 'selfie.jpg', mimeType: 'image/jpeg', buffer: Buffer.from(bytes) });

  // Shown once: the queue row gives way to the image's tile when it is ready.
  const tile = page.getByTestId('image-tile');
  await expect(tile).toHaveCount(1);
  await expect(page.getByTestId('upload-item')).toHaveCount(0);
  const statuses = await page.evaluate(() => window.__statuses);
  expect(statuses).toContain('Uploading 100%');
  expect(statuses.indexOf('Uploading 100%')).toBeLessThan(statuses.indexOf('Ready'));

  await expect(tile.getByTestId('image-size')).toContainText('20 × 40');
  // Kept a day (the default) from its upload, and the tile says so.
  await expect(tile.getByTestId('image-kept')).toHaveText(/^Deleted in (23|24) hours unless a job uses it$/);
  const img = tile.locator('img');
  await expect(img).toHaveJSProperty('naturalWidth', 20);
  const src = await img.getAttribute('src');
  // The embedded storage is served on the app's own origin, each object behind a signed link.
  expect(new URL(src).origin).toBe(new URL(page.url()).origin);
  expect(new URL(src).pathname.startsWith('/darkroom-uploads/sources/')).toBe(true);
  expect(new URL(src).searchParams.get('X-Amz-Signature')).toBeTruthy();
  const stored = await (await page.request.get(src)).body();
  expect(stored.includes(Buffer.from(GPS_MARK))).toBe(false);
  expect(stored.includes(Buffer.from('Exif\0\0'))).toBe(false);
  expect(stored.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));

  await page.reload();
  await expect(page.getByTestId('image-tile')).toHaveCount(1);
  // The reset this test injected is the only error the browser may have logged.
  expect(errors.filter((e) => !e.includes('ERR_CONNECTION_RESET'))).toEqual([]);
});

test('images can be dropped or pasted, refused files say why, and images can be deleted', async ({ page }) => {
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('drop'));
  const image = await png(page, 12, 12);

  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
    document.querySelector('[data-testid=dropzone]').dispatchEvent(
      new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }),
    );
  }, [...image]);
  await expect(page.getByTestId('image-tile')).toHaveCount(1);

  // Leaving the tab and coming back must not double the paste listener.
  await tab(page, 'Account').click();
  await tab(page, 'Create').click();
  await expect(page.getByTestId('image-tile')).toHaveCount(1);
  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }));
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
  }, [...image]);
  await expect(page.getByTestId('image-tile')).toHaveCount(2);
  await expect(page.getByTestId('upload-item')).toHaveCount(0);

  await page.locator('#upload-input').setInputFiles({
    name: 'evil.png',
    mimeType: 'image/png',
    buffer: Buffer.from('<!DOCTYPE html><html><script>alert(1)</script></html>'),
  });
  await expect(page.getByTestId('upload-status').nth(0)).toHaveText('The file is not an image (it looks like an HTML page).');
  await page.locator('#upload-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
  await expect(page.getByTestId('upload-status').nth(1)).toContainText('text/plain files are not accepted');
  await expect(page.getByTestId('image-tile')).toHaveCount(2);

  await page.getByRole('button', { name: 'Delete dropped.png' }).click();
  await expect(page.getByTestId('image-tile')).toHaveCount(1);
  await expect(page.getByRole('button', { name: 'Delete pasted.png' })).toBeVisible();
  expect(errors).toEqual([]);
});

test('a lost connection is retried, and an upload can be canceled', async ({ page }) => {
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('retry'));
  const image = await png(page, 12, 12);
  await recordStatuses(page);

  // The first PUT dies on the wire; the uploader backs off and tries again.
  let puts = 0;
  await page.route((url) => url.pathname.includes('/uploads/'), async (route) => {
    if (route.request().method() !== 'PUT') return route.continue();
    puts += 1;
    if (puts === 1) return route.abort('connectionreset');
    return route.continue();
  });
  await page.locator('#upload-input').setInputFiles({ name: 'flaky.png', mimeType: 'image/png', buffer: image });
  await expect(page.getByTestId('image-tile')).toHaveCount(1, { timeout: 15_000 });
  expect(puts).toBe(2);
  expect(await page.evaluate(() => window.__statuses)).toContain('Connection lost, retrying (1/2)…');
  await page.unroute((url) => url.pathname.includes('/uploads/'));

  // A PUT that never finishes can be canceled; nothing is kept.
  await page.route((url) => url.pathname.includes('/uploads/'), (route) => {
    if (route.request().method() !== 'PUT') return route.continue();
    return new Promise(() => {});
  });
  await page.locator('#upload-input').setInputFiles({ name: 'stuck.png', mimeType: 'image/png', buffer: image });
  const stuck = page.getByTestId('upload-item');
  await expect(stuck.getByTestId('upload-status')).toHaveText(/^Uploading \d+%$/);
  await stuck.getByRole('button', { name: 'Cancel' }).click();
  await expect(stuck.getByTestId('upload-status')).toHaveText('Canceled');
  await page.reload();
  await expect(page.getByTestId('image-tile')).toHaveCount(1);
  // The reset this test injected is the only error the browser may have logged.
  expect(errors.filter((e) => !e.includes('ERR_CONNECTION_RESET'))).toEqual([]);
});
