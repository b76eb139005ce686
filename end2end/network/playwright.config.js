// The network test's browser: Chromium on its own host (a network namespace), reaching Darkroom
// only at https://darkroom.test through the proxy. It trusts the test's certificate by its key
// (nothing else is relaxed). run.sh sets the environment and starts every server.
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: '.',
  testMatch: '*.spec.js',
  timeout: 120_000,
  expect: { timeout: 20_000 },
  workers: 1,
  retries: 0,
  reporter: 'list',
  use: { baseURL: 'https://darkroom.test', trace: 'retain-on-failure' },
  projects: [
    {
      name: 'chromium',
      use: {
        browserName: 'chromium',
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
          args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            `--ignore-certificate-errors-spki-list=${process.env.DARKROOM_NETWORK_SPKI}`,
          ],
        },
      },
    },
  ],
});
