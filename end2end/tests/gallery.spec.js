const { test, expect } = require('@playwright/test');
const { uniqueEmail, falKey, watchErrors, signup, tab, hydrated, saveKey, generate } = require('./helpers');

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
  // The earlier run's card is Done already: wait for the edit's own card before its status.
  const jobsBefore = await page.getByTestId('job').count();
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('job')).toHaveCount(jobsBefore + 1);
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

/**
 * Stores `count` finished results for the account `email` straight into the server's SQLite
 * database (generating 1,500 through the fake fal would take minutes); returns their ids
 * newest first. Their files are not stored: the grid only needs the rows.
 */
function seedResults(email, count) {
  const db = require('path').join(process.env.DARKROOM_E2E_DATA, 'darkroom.db');
  const script = `
import sqlite3, sys, uuid, json
db = sqlite3.connect(sys.argv[1], timeout=30)
(user,) = db.execute("SELECT id FROM users WHERE email = ?", (sys.argv[2],)).fetchone()
base, ids = 1767225600000, []
with db:
    for i in range(int(sys.argv[3])):
        job, asset, at = str(uuid.uuid4()), str(uuid.uuid4()), base - i * 1000
        prompt = f"seeded tile {i}"
        db.execute("INSERT INTO jobs (id, user_id, model, params_json, upload_ids_json, state, max_attempts, "
                   "next_attempt_at, queued_at, created_at, updated_at, prompt_search) "
                   "VALUES (?, ?, 'fal-ai/nano-banana', ?, '[]', 'succeeded', 5, ?, ?, ?, ?, ?)",
                   (job, user, json.dumps({"prompt": prompt}), at, at, at, at, prompt))
        db.execute("INSERT INTO assets (id, user_id, job_id, position, object_key, kind, content_type, byte_size, "
                   "sha256, width, height, expires_at, created_at) "
                   "VALUES (?, ?, ?, 0, ?, 'image', 'image/png', 68, 'x', 8, 8, ?, ?)",
                   (asset, user, job, f"results/{user}/{job}/0.png", at + 3650 * 86400000, at))
        ids.append(asset)
print(json.dumps(ids))
`;
  const out = require('child_process').execFileSync('python3', ['-c', script, db, email, String(count)]);
  return JSON.parse(String(out));
}

test('a long gallery keeps only the rows near the screen in the page, in place, whatever the depth', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1000, height: 800 });
  const email = uniqueEmail('long');
  await signup(page, email);
  const ids = seedResults(email, 1500);
  await tab(page, 'Gallery').click();
  await hydrated(page);
  const grid = page.getByTestId('gallery-grid');
  await expect(tiles(page).first()).toHaveAttribute('data-id', ids[0]);

  // Scroll to the end until every page has loaded.
  for (let loaded = 0; loaded < ids.length; ) {
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await expect(grid).not.toHaveAttribute('data-count', String(loaded));
    loaded = Number(await grid.getAttribute('data-count'));
  }
  await expect(page.getByTestId('load-more')).toHaveCount(0);
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  await expect(tiles(page).last()).toHaveAttribute('data-id', ids[ids.length - 1]);
  const drawn = await tiles(page).count();
  expect(drawn).toBeLessThan(400);

  // Any row brought to the top of the screen holds exactly the results of that row.
  const layout = await grid.evaluate((el) => {
    const tile = el.querySelector('[data-testid=gallery-tile]').getBoundingClientRect();
    const style = getComputedStyle(el);
    return {
      columns: style.gridTemplateColumns.split(' ').length,
      pitch: tile.height + parseFloat(style.rowGap),
      top: el.getBoundingClientRect().top + window.scrollY,
      left: el.getBoundingClientRect().left,
    };
  });
  // Scrolls `row` to the middle of the screen and says which result is drawn where its first
  // tile belongs.
  const drawnAtRow = async (row) => {
    await page.evaluate((y) => window.scrollTo(0, y), layout.top + row * layout.pitch - 400);
    const first = ids[row * layout.columns];
    await expect(page.locator(`[data-testid=gallery-tile][data-id="${first}"]`)).toBeInViewport();
    return page.evaluate(([x, y]) => {
      const hit = document.elementFromPoint(x, y - window.scrollY)?.closest('[data-testid=gallery-tile]');
      return hit?.dataset.id;
    }, [layout.left + 20, layout.top + row * layout.pitch + layout.pitch / 2]);
  };
  const rows = Math.ceil(ids.length / layout.columns);
  for (const row of [Math.floor(rows / 2), 3, rows - 6]) {
    expect(await drawnAtRow(row)).toBe(ids[row * layout.columns]);
    expect(await tiles(page).count()).toBeLessThan(400);
  }

  // The viewer opens over a deep tile and closes back to the same place.
  const deepRow = Math.floor(rows / 3);
  await drawnAtRow(deepRow);
  const before = await page.evaluate(() => window.scrollY);
  await page.locator(`[data-testid=gallery-tile][data-id="${ids[deepRow * layout.columns]}"] a.tile-open`).click();
  await expect(page.getByTestId('viewer-facts')).toHaveAttribute('data-id', ids[deepRow * layout.columns]);
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('viewer')).toHaveCount(0);
  expect(await page.evaluate(() => window.scrollY)).toBe(before);

  // Back at the top: the newest result first, still a bounded page.
  expect(await drawnAtRow(0)).toBe(ids[0]);
  expect(await tiles(page).count()).toBeLessThan(400);
});
