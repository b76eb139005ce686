const { test, expect } = require('@playwright/test');
const { uniqueEmail, watchErrors, hydrated, signup, tab } = require('./helpers');

test('an access token is made on the Account tab, shown once, works on the API and stops when revoked', async ({ page, request }) => {
  const errors = watchErrors(page);
  const email = uniqueEmail('tokens');
  await signup(page, email);
  await tab(page, 'Account').click();
  await hydrated(page);

  // Nothing chosen: the server says what is missing, next to the field.
  await page.getByLabel('Name').fill('my phone');
  await page.getByTestId('token-create').click();
  await expect(page.locator('#token-scopes-hint')).toContainText('at least one');

  await page.locator('input[data-scope="account:read"]').check();
  await page.getByTestId('token-create').click();
  const secret = page.getByTestId('token-secret');
  await expect(secret).toHaveText(/^drk_pat_[0-9A-Za-z]{38}$/);
  const token = await secret.textContent();
  const listed = page.getByTestId('token');
  await expect(listed).toHaveCount(1);
  await expect(listed).toContainText('my phone');
  await expect(listed).toContainText(`${token.slice(0, 12)}…`);
  await expect(listed).toContainText('never used');

  // The API answers the token (a client without the browser's cookies, as an app would be).
  const me = await request.get('/api/v1/me', { headers: { authorization: `Bearer ${token}` } });
  expect(me.status()).toBe(200);
  expect((await me.json()).email).toBe(email);

  // Once the page is left, the secret is gone from it; the list says when it was last used.
  await page.reload();
  await expect(page.getByTestId('token-secret')).toHaveCount(0);
  expect(await page.content()).not.toContain(token);
  await expect(page.getByTestId('token')).toContainText('last used');

  await hydrated(page);
  await page.getByTestId('token-revoke').click();
  await expect(page.getByTestId('token')).toHaveAttribute('data-revoked', 'true');
  const refused = await request.get('/api/v1/me', { headers: { authorization: `Bearer ${token}` } });
  expect(refused.status()).toBe(401);
  expect(refused.headers()['content-type']).toBe('application/problem+json');
  expect((await refused.json()).code).toBe('token.not_accepted');
  expect(errors).toEqual([]);
});
