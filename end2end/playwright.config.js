// Playwright drives Debian's Chromium (no browser download) against the real server binary,
// which talks to the fake fal server and its own embedded S3 endpoint, all on loopback.
// The binary and the site (wasm, css) must be built first: `make test` does that.
//
// A second server plays Darkroom reached over plain http on a home network: Chromium resolves
// the name `darkroom.test` to loopback, but the origin is neither https nor localhost, so the
// page is not a secure context (no WebCrypto), exactly as at http://192.168.1.10:3000.
const { defineConfig } = require('@playwright/test');
const fs = require('fs');
const os = require('os');
const path = require('path');

const repo = path.resolve(__dirname, '..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
const bin = process.env.DARKROOM_BIN || path.join(targetDir, 'debug', 'darkroom');
const port = Number(process.env.E2E_PORT || 3100);
const baseURL = `http://127.0.0.1:${port}`;
const fakeFal = `http://127.0.0.1:${port + 2}`;
const lanPort = port + 10;
const lanURL = `http://darkroom.test:${lanPort}`;
process.env.DARKROOM_E2E_LAN_URL = lanURL;
// Made once in the main process; workers inherit the variable instead of making their own.
process.env.DARKROOM_E2E_DATA ||= fs.mkdtempSync(path.join(os.tmpdir(), 'darkroom-e2e-'));
const dataDir = process.env.DARKROOM_E2E_DATA;

module.exports = defineConfig({
  testDir: './tests',
  globalTeardown: './teardown.js',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: 'list',
  use: {
    baseURL,
    trace: 'retain-on-failure',
  },
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
            '--host-resolver-rules=MAP darkroom.test 127.0.0.1',
          ],
        },
      },
    },
  ],
  webServer: [
    {
      command: `"${bin}" fake-fal --addr 127.0.0.1:${port + 2}`,
      url: `${fakeFal}/healthz`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    darkroom(port, dataDir),
    darkroom(lanPort, path.join(dataDir, 'lan'), { PUBLIC_URL: lanURL }),
  ],
});

/** A Darkroom server on loopback `listen` (serving its embedded storage too), keeping its data in `data`. */
function darkroom(listen, data, extra = {}) {
  return {
    command: `"${bin}" serve`,
    cwd: repo,
    url: `http://127.0.0.1:${listen}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    env: {
      RUST_LOG: 'info',
      LEPTOS_SITE_ADDR: `127.0.0.1:${listen}`,
      LEPTOS_SITE_ROOT: path.join(repo, 'target', 'site'),
      LEPTOS_OUTPUT_NAME: 'darkroom',
      DARKROOM_DATA_DIR: data,
      FAL_QUEUE_URL: `${fakeFal}/queue`,
      FAL_API_URL: `${fakeFal}/v1`,
      FAL_REST_URL: `${fakeFal}/rest`,
      FAL_JWKS_URL: `${fakeFal}/rest/.well-known/jwks.json`,
      FAL_MEDIA_HOSTS: '127.0.0.1',
      // Every test signs up from 127.0.0.1; the default (10 an hour per address) is for people.
      DARKROOM_SIGNUPS_PER_IP: '1000',
      // The browser tests draw their photos (no faces); the API suite tests the face check.
      DARKROOM_FACE_CHECK: 'off',
      ...extra,
    },
  };
}
