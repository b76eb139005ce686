const { test, expect } = require('@playwright/test');
const { PASSWORD, uniqueEmail, watchErrors, hydrated } = require('./helpers');

// A browser set to Spanish.
test.use({ locale: 'es-ES' });

test('a Spanish browser gets the app in Spanish, and the switch to English stays chosen', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/signup');
  await hydrated(page);
  await expect(page.locator('html')).toHaveAttribute('lang', 'es');
  await expect(page.getByRole('heading', { name: 'Crea tu cuenta' })).toBeVisible();
  await page.getByLabel('Correo electrónico').fill(uniqueEmail('idioma'));
  await page.getByLabel('Contraseña', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Confirma la contraseña').fill(PASSWORD);
  await page.getByRole('button', { name: 'Registrarse' }).click();
  await expect(page).toHaveURL(/\/create$/);

  const nav = page.getByRole('navigation', { name: 'Principal' });
  await expect(nav.getByRole('link', { name: 'Galería' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Crear', level: 1 })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Elegir imágenes' })).toBeVisible();
  await expect(page.getByTestId('no-jobs')).toHaveText('Todavía no has generado nada.');

  // A server's refusal comes in Spanish too.
  await nav.getByRole('link', { name: 'Cuenta' }).click();
  await page.getByLabel('Tu clave de fal').fill('nonsense');
  await page.getByRole('button', { name: 'Guardar clave' }).click();
  await expect(page.getByText('Eso no parece una clave de fal.')).toBeVisible();

  // The switch goes back to the same page in English, and the choice outlives a reload.
  await page.getByTestId('language').filter({ hasText: 'English' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await hydrated(page);
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Gallery' })).toBeVisible();
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Create' })).toBeVisible();
  await expect(page.getByTestId('language').filter({ hasText: 'Español' })).toBeVisible();
  expect(errors).toEqual([]);
});
