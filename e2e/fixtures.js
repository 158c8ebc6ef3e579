// @ts-check
// The tests' world: a fresh eauthd and a test portal per test, an application that links
// them, and a user enrolled with it; or, for the example portal's tests, the `eauth-portal`
// binary registered with that eauthd and a person with an account on it; and the user's
// `eauth`, registered for push approval (`eauthApp`). `sessionTtlSecs` is
// an option a test file can set with `test.use({ sessionTtlSecs: 3 })`.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const base = require("@playwright/test");

const { startService, User, REPO_ROOT } = require("./lib/service");
const { Portal } = require("./lib/portal");
const { startExamplePortal, Account } = require("./lib/example-portal");
const { EauthApp } = require("./lib/eauth-app");

/** The test portal's name at the service: the issuer of its QR codes, and what the page shows. */
const APP_NAME = "Test Portal";

/** Screenshots for people to look at (the test report's own files go to test-results/). */
const ARTIFACTS = path.join(REPO_ROOT, "target", "e2e-artifacts");

/** What the service serves a browser; a request for anything else is a broken link or script. */
const SERVICE_PATHS = new Set([
  "/start-authentication",
  "/start-authentication/status",
  "/assets/webview.css",
  "/assets/webview.js",
  "/sdk/eauth.js",
  "/assets/console.css",
  "/assets/console.js",
  "/assets/console-icon.svg",
]);

/** Whether the service has a page or file at `pathname` (the Domain Console's pages included). */
const serves = (pathname) => SERVICE_PATHS.has(pathname) || pathname === "/console" || pathname.startsWith("/console/");

/**
 * @typedef {object} World
 * @property {number | undefined} sessionTtlSecs `EAUTH_SESSION_TTL_SECS`, when not the default
 * @property {import("./lib/portal").Portal} portal
 * @property {Awaited<ReturnType<typeof startService>>} service
 * @property {{ client_id: string, api_key: string, callback_secret: string }} app
 * @property {User} user
 * @property {EauthApp} eauthApp
 * @property {import("./lib/example-portal").ExamplePortal} examplePortal
 * @property {Account} account
 * @property {Account} twoFactorAccount
 * @property {(page: import("@playwright/test").Page, name: string) => Promise<Buffer>} snap
 */

/** @type {import("@playwright/test").Fixtures<World, {}, import("@playwright/test").PlaywrightTestArgs & import("@playwright/test").PlaywrightTestOptions>} */
const world = {
  sessionTtlSecs: [undefined, { option: true }],

  /** The browser context, watched for requests to the service that it has no page for. */
  context: async ({ context, service }, use) => {
    const strays = [];
    context.on("request", (request) => {
      const url = new URL(request.url());
      if (url.origin === service.origin && !serves(url.pathname)) strays.push(`${request.method()} ${url.pathname}`);
    });
    await use(context);
    base.expect(strays, "the browser asked the service for paths it does not serve").toEqual([]);
  },

  portal: async ({}, use) => {
    const portal = await new Portal().start();
    await use(portal);
    await portal.stop();
  },

  service: async ({ sessionTtlSecs }, use, testInfo) => {
    const service = await startService({ logPath: testInfo.outputPath("eauthd.log"), sessionTtlSecs });
    try {
      await use(service);
    } finally {
      await service.stop();
      if (testInfo.status !== testInfo.expectedStatus) {
        await testInfo.attach("eauthd.log", { path: testInfo.outputPath("eauthd.log"), contentType: "text/plain" });
      }
    }
  },

  /** The portal's registration: `{client_id, api_key, callback_secret}`. */
  app: async ({ service, portal }, use) => {
    const app = await service.createApplication({
      name: APP_NAME,
      callbackUrl: portal.callbackUrl,
      redirectUris: [portal.redirectUri],
    });
    portal.configure({ serviceUrl: service.url, callbackSecret: app.callback_secret });
    await use(app);
  },

  user: async ({ service, app }, use) => {
    await use(await User.enroll(service, app));
  },

  /** The user's `eauth`, with an accounts file of its own, registered for push approval. */
  eauthApp: async ({ service, app, user }, use) => {
    const eauthApp = new EauthApp();
    try {
      await eauthApp.register(service, app, user, APP_NAME);
      await use(eauthApp);
    } finally {
      eauthApp.remove();
    }
  },

  /** The example portal, `eauth-portal`, registered with this test's service. */
  examplePortal: async ({ service }, use, testInfo) => {
    const logPath = testInfo.outputPath("eauth-portal.log");
    const portal = await startExamplePortal({ service, logPath });
    try {
      await use(portal);
    } finally {
      await portal.stop();
      if (testInfo.status !== testInfo.expectedStatus) {
        await testInfo.attach("eauth-portal.log", { path: logPath, contentType: "text/plain" });
      }
    }
  },

  /** A person who has not signed up to the example portal yet. */
  account: async ({ examplePortal }, use) => {
    await use(new Account(examplePortal));
  },

  /** A person who signed up to the example portal, set up 2FA from its QR code and signed out. */
  twoFactorAccount: async ({ page, account }, use) => {
    await account.signUp(page);
    await account.setUpTwoFactor(page);
    await account.signOut(page);
    await use(account);
  },

  /** `snap(page, name)`: a full-page screenshot at target/e2e-artifacts/NAME.png. */
  snap: async ({}, use) => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await use((page, name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true }));
  },
};

const test = base.test.extend(world);

module.exports = { test, expect: base.expect, ARTIFACTS, APP_NAME };
