// @ts-check
// Browser tests of the sign-in webview, the example portal and the Domain Console, in Debian's
// Chromium (`npx playwright install` cannot download browsers here). See README.md, "Browser
// tests".
"use strict";

const path = require("node:path");
const { defineConfig } = require("@playwright/test");

module.exports = defineConfig({
  testDir: "tests",
  outputDir: path.join(__dirname, "..", "target", "e2e-artifacts", "test-results"),
  fullyParallel: true,
  // Two cores: each test runs its own eauthd next to a browser.
  workers: 2,
  retries: 0,
  forbidOnly: true,
  reporter: "list",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  use: {
    browserName: "chromium",
    launchOptions: {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
    // The service's certificate is self-signed.
    ignoreHTTPSErrors: true,
    // A phone's webview, the redirect flow's usual home; popups are opened at 500×600.
    viewport: { width: 390, height: 844 },
    trace: "retain-on-failure",
  },
});
