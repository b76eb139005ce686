const { test, expect } = require('@playwright/test');
const { uniqueEmail, falKey, watchErrors, signup, tab, hydrated } = require('./helpers');

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

const tiles = (page) => page.getByTestId('gallery-tile');

test('results arrive in the grid live, the viewer walks them by keyboard, and curation reports what it did', async ({ page }) => {
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('gallery'));
  await saveKey(page);
  await tab(page, 'Gallery').click();
  await expect(page).toHaveURL(/\/gallery$/);
  await hydrated(page);
  await expect(page.getByTestId('gallery-empty')).toContainText('No results yet');

  // Three results, made while the gallery is open: they appear without a reload.
  await generate(page, 'fal-ai/nano-banana', 'a lighthouse at dusk');
  await expect(tiles(page)).toHaveCount(1, { timeout: 20_000 });
  await generate(page, 'fal-ai/flux/dev', 'a red fox in snow');
  await expect(tiles(page)).toHaveCount(2, { timeout: 20_000 });
  await generate(page, 'fal-ai/nano-banana', 'a paper boat');
  await expect(tiles(page)).toHaveCount(3, { timeout: 20_000 });
  const ids = await tiles(page).evaluateAll((els) => els.map((el) => el.dataset.id));
  for (const img of await page.locator('[data-testid=gallery-tile] img').all()) {
    await expect(img).toHaveJSProperty('complete', true);
    expect(await img.evaluate((el) => el.naturalWidth)).toBeGreaterThan(0);
  }

  // Search by a word of the prompt, in any case, and by the beginning of a word being typed.
  const search = page.getByTestId('gallery-search');
  await search.fill('LIGHTHOUSE');
  await expect(tiles(page)).toHaveCount(1);
  await expect(tiles(page).first()).toHaveAttribute('data-id', ids[2]);
  await search.fill('fo');
  await expect(tiles(page)).toHaveCount(1);
  await expect(tiles(page).first()).toHaveAttribute('data-id', ids[1]);
  await expect(page).toHaveURL(/q=fo/);
  await search.fill('');
  await expect(tiles(page)).toHaveCount(3);
  await expect(page).toHaveURL(/\/gallery$/);

  // The viewer: newest first, → and ← walk the grid's order, Esc closes and the grid stays.
  await tiles(page).first().locator('a.tile-open').click();
  const facts = page.getByTestId('viewer-facts');
  await expect(facts).toHaveAttribute('data-id', ids[0]);
  await expect(page.getByTestId('viewer-prompt')).toHaveText('a paper boat');
  await expect(page).toHaveURL(new RegExp(`open=${ids[0]}`));
  await page.keyboard.press('ArrowRight');
  await expect(facts).toHaveAttribute('data-id', ids[1]);
  await expect(page.getByTestId('viewer-prompt')).toHaveText('a red fox in snow');
  await expect(page.getByTestId('viewer-model')).toContainText('fal-ai/flux/dev');
  await expect(page.getByTestId('viewer-expiry')).toContainText('Expires in');
  await page.keyboard.press('ArrowLeft');
  await expect(facts).toHaveAttribute('data-id', ids[0]);

  // Download: the file saved is the stored one, under its gallery name.
  const viewed = await page.getByTestId('viewer-media').getAttribute('src');
  const stored = await (await page.request.get(viewed)).body();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('viewer-download').click()]);
  expect(download.suggestedFilename()).toMatch(/^darkroom-nano-banana-\d{4}-\d{2}-\d{2}-1\.png$/);
  const saved = require('fs').readFileSync(await download.path());
  expect(saved.equals(stored)).toBe(true);

  // Favorite from the viewer, then close it: the grid kept its place and shows the star.
  await page.getByTestId('viewer-favorite').click();
  await expect(page.getByTestId('viewer-favorite')).toHaveAttribute('aria-pressed', 'true');
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('viewer')).toHaveCount(0);
  await expect(page).toHaveURL(/\/gallery$/);
  await expect(tiles(page).first()).toHaveAttribute('data-favorite', 'true');
  await page.getByRole('link', { name: 'Favorites', exact: true }).click();
  await expect(page).toHaveURL(/favorites=1/);
  await expect(tiles(page)).toHaveCount(1);
  await page.goBack();
  await expect(tiles(page)).toHaveCount(3);

  // Filter by model; the filter is in the URL, so a reload keeps it.
  await page.getByTestId('filter-model').selectOption('fal-ai/flux/dev');
  await expect(page).toHaveURL(/model=fal-ai%2Fflux%2Fdev/);
  await expect(tiles(page)).toHaveCount(1);
  await page.reload();
  await expect(tiles(page)).toHaveCount(1);
  await expect(tiles(page).first()).toHaveAttribute('data-id', ids[1]);
  await page.getByTestId('filter-model').selectOption('');
  await expect(tiles(page)).toHaveCount(3);
  await hydrated(page);

  // Select three with a click and a shift-click, and trash them.
  await tiles(page).nth(0).getByTestId('select').click();
  await tiles(page).nth(2).getByTestId('select').click({ modifiers: ['Shift'] });
  await expect(page.getByTestId('selected-count')).toHaveText('3 selected');

  // Download the three as one zip: the page stays, the selection too.
  const [zip] = await Promise.all([page.waitForEvent('download'), page.getByTestId('bulk-download').click()]);
  expect(zip.suggestedFilename()).toMatch(/^darkroom-\d{4}-\d{2}-\d{2}-3\.zip$/);
  const listing = require('child_process').execFileSync('python3', [
    '-c',
    'import sys, zipfile, hashlib; z = zipfile.ZipFile(sys.argv[1]); ' +
      '[print(n, hashlib.sha256(z.read(n)).hexdigest()) for n in z.namelist()]',
    await zip.path(),
  ]);
  const entries = String(listing).trim().split('\n').map((line) => line.split(' '));
  expect(entries.map(([name]) => name.replace(/\d{4}-\d{2}-\d{2}/, 'DAY'))).toEqual([
    'darkroom-nano-banana-DAY-1.png',
    'darkroom-flux-dev-DAY-1.png',
    'darkroom-nano-banana-DAY-1-2.png',
    'manifest.json',
  ]);
  // Each file is whole: its bytes hash to what Darkroom recorded when it stored the result, and
  // the one downloaded singly above is among them (the fake fal serves one picture for all).
  const manifest = JSON.parse(
    require('child_process').execFileSync('python3', [
      '-c',
      'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read("manifest.json").decode())',
      await zip.path(),
    ]),
  );
  const recorded = new Map(manifest.jobs.flatMap((job) => job.files.map((file) => [file.name, file.sha256])));
  expect(recorded.size).toBe(3);
  for (const [name, hash] of entries.slice(0, 3)) expect(recorded.get(name)).toBe(hash);
  const sha = require('crypto').createHash('sha256').update(stored).digest('hex');
  expect(entries.filter(([, hash]) => hash === sha)).toHaveLength(3);
  await expect(page).toHaveURL(/\/gallery$/);
  await expect(page.getByTestId('selected-count')).toHaveText('3 selected');

  await page.getByTestId('bulk-trash').click();
  await expect(page.getByTestId('notice')).toHaveText('3 moved to the trash');
  await expect(page.getByTestId('gallery-empty')).toBeVisible();

  // In the trash: restore one, then empty the rest for good.
  await page.getByRole('link', { name: 'Trash', exact: true }).click();
  await expect(tiles(page)).toHaveCount(3);
  await tiles(page).nth(1).getByTestId('select').click();
  await page.getByTestId('bulk-restore').click();
  await expect(page.getByTestId('notice')).toHaveText('1 restored');
  await expect(tiles(page)).toHaveCount(2);
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByTestId('empty-trash').click();
  await expect(page.getByTestId('notice')).toHaveText('2 deleted for good.');
  await expect(page.getByTestId('gallery-empty')).toContainText('The trash is empty');
  await page.getByRole('link', { name: 'All', exact: true }).click();
  await expect(tiles(page)).toHaveCount(1);
  await expect(tiles(page).first()).toHaveAttribute('data-id', ids[1]);
  // Gone for good means gone from storage too: its link no longer serves anything.
  expect((await page.request.get(viewed)).status()).toBe(404);
  expect(errors).toEqual([]);
});

test('on a phone the grid shows three tiles a row and the viewer fits the screen', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await signup(page, uniqueEmail('phone'));
  await saveKey(page);
  await tab(page, 'Gallery').click();
  await hydrated(page);
  for (const prompt of ['one', 'two', 'three', 'four']) await generate(page, 'fal-ai/nano-banana', prompt);
  await expect(tiles(page)).toHaveCount(4, { timeout: 30_000 });
  const boxes = await tiles(page).evaluateAll((els) => els.map((el) => el.getBoundingClientRect().toJSON()));
  expect(boxes[0].top).toBe(boxes[2].top);
  expect(boxes[3].top).toBeGreaterThan(boxes[0].top);
  expect(boxes[2].right).toBeLessThanOrEqual(390);
  expect(boxes[0].width).toBeGreaterThan(90);
  await tiles(page).first().locator('a.tile-open').click();
  const media = page.getByTestId('viewer-media');
  await expect(media).toBeVisible();
  expect((await media.boundingBox()).width).toBeLessThanOrEqual(390);
  await page.getByTestId('viewer-close').click();
  await expect(page.getByTestId('viewer')).toHaveCount(0);
});

test('a result runs again with the same inputs and becomes the input of an edit', async ({ page }) => {
  const errors = watchErrors(page);
  await signup(page, uniqueEmail('reuse'));
  await saveKey(page);
  await tab(page, 'Gallery').click();
  await hydrated(page);
  const prompt = `a red door ${Date.now()}`;
  await generate(page, 'fal-ai/nano-banana', prompt);
  await expect(tiles(page)).toHaveCount(1, { timeout: 20_000 });

  await tiles(page).first().locator('a.tile-open').click();
  await page.getByTestId('viewer-rerun').click();
  await expect(page).toHaveURL(/\/create$/);
  await expect(page.getByTestId('job').first().getByTestId('job-status')).toHaveText('Done', { timeout: 20_000 });
  const fakeFal = `http://127.0.0.1:${Number(process.env.E2E_PORT || 3100) + 2}`;
  const seen = await (await page.request.get(`${fakeFal}/_fake/requests`)).json();
  const mine = seen.requests.filter((r) => r.input.prompt === prompt);
  expect(mine).toHaveLength(2);
  expect(JSON.stringify(mine[1].input)).toBe(JSON.stringify(mine[0].input));

  // Use the result as an edit's input: it arrives chosen on the Create tab.
  await tab(page, 'Gallery').click();
  await expect(tiles(page)).toHaveCount(2);
  await tiles(page).first().locator('a.tile-open').click();
  await page.getByTestId('viewer-use').click();
  await expect(page).toHaveURL(/\/create\?use=/);
  await expect(page.getByTestId('image-tile')).toHaveCount(1);
  await expect(page.getByTestId('use-image')).toBeChecked();
  await page.getByTestId('preset').first().click();
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('job').first().getByTestId('job-status')).toHaveText('Done', { timeout: 20_000 });
  const after = await (await page.request.get(`${fakeFal}/_fake/requests`)).json();
  const edit = after.requests.find((r) => r.endpoint === 'fal-ai/nano-banana/edit' && !seen.requests.some((s) => s.id === r.id));
  expect(edit).toBeTruthy();
  expect(edit.input.image_urls).toHaveLength(1);

  // A video made from a result: its tile shows a poster frame (a still, not the video) and its length.
  await tab(page, 'Gallery').click();
  await expect(tiles(page)).toHaveCount(3);
  const [newest] = await tiles(page).evaluateAll((els) => els.map((el) => el.dataset.id));
  const video = await page.evaluate(async (id) => {
    const post = (path, init) =>
      fetch(path, { method: 'POST', ...init }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const copied = await post('/api/gallery/use_as_input', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: `id=${encodeURIComponent(id)}`,
    });
    if (copied.status !== 200) return copied;
    return post('/api/jobs/create', {
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        model: 'fal-ai/kling-video/v2.1/standard/image-to-video',
        params: { prompt: 'the door opens' },
        images: [JSON.parse(copied.body)],
      }),
    });
  }, newest);
  expect(video).toMatchObject({ status: 200 });
  await expect(tiles(page)).toHaveCount(4, { timeout: 20_000 });
  const poster = tiles(page).first();
  await expect(poster.getByTestId('tile-duration')).toHaveText('▶ 2 s');
  await expect(poster.locator('video')).toHaveCount(0);
  await expect(poster.locator('img')).toHaveJSProperty('complete', true);
  expect(await poster.locator('img').evaluate((el) => [el.naturalWidth, el.naturalHeight])).toEqual([160, 90]);
  expect(errors).toEqual([]);
});
