// @ts-check
// The example portal (crates/eauth-portal) as a test runs it: the `eauth-portal` binary on a
// free port with a data directory of its own, registered with the test's service exactly as
// an integrator registers a portal; and what a person does on its pages, found as a person
// finds it (by labels, buttons and headings), with the authenticator app's codes computed by
// the tests' own TOTP from the secret read out of the QR code.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const jsQR = require("jsqr");
const { PNG } = require("pngjs");
const { expect } = require("@playwright/test");

const { binary, cleanEnv, startProgram } = require("./program");
const { signCallback } = require("./portal");
const { User } = require("./service");

/** `cargo build --bin eauth-portal`'s binary, or `$EAUTH_PORTAL`. */
const EAUTH_PORTAL = binary("eauth-portal", "EAUTH_PORTAL");
/** The name the portal gives itself: on its pages, on the sign-in page, as the QR code's issuer. */
const PORTAL_NAME = "Demo Portal";

/** A port that was free a moment ago on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (address && typeof address === "object" ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * Registers an application for a portal on a free port and starts `eauth-portal` there with
 * the application's credentials and the service's certificate. Another program may take the
 * port between our look and the portal's bind: then it tries another port.
 * @param {{ service: import("./service").Service, logPath: string }} options
 */
async function startExamplePortal({ service, logPath }) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const app = await service.createApplication({
      name: PORTAL_NAME,
      callbackUrl: `${origin}/eauth/callback`,
      redirectUris: [`${origin}/callback`],
    });
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "eauth-portal-e2e-"));
    const env = cleanEnv(["PORTAL_", "EAUTH_"], {
      PORTAL_LISTEN: `127.0.0.1:${port}`,
      PORTAL_PUBLIC_URL: origin,
      PORTAL_DATA_DIR: dataDir,
      PORTAL_EAUTH_URL: service.url,
      PORTAL_CLIENT_ID: app.client_id,
      PORTAL_API_KEY: app.api_key,
      PORTAL_CALLBACK_SECRET: app.callback_secret,
      PORTAL_CA_CERT: path.join(service.dataDir, "tls", "cert.pem"),
    });
    try {
      const program = await startProgram({ file: EAUTH_PORTAL, env, logPath, ready: /^eauth-portal serving / });
      return new ExamplePortal({ origin, app, service, dataDir, program });
    } catch (error) {
      fs.rmSync(dataDir, { recursive: true, force: true });
      const portTaken = fs.existsSync(logPath) && fs.readFileSync(logPath, "utf8").includes("cannot listen");
      if (!portTaken || attempt === 3) throw error;
    }
  }
}

class ExamplePortal {
  constructor({ origin, app, service, dataDir, program }) {
    /** e.g. `http://localhost:41234` */
    this.origin = origin;
    /** Its registration: `{client_id, api_key, callback_secret}`. */
    this.app = app;
    this.service = service;
    this.dataDir = dataDir;
    this.program = program;
    this.name = PORTAL_NAME;
  }

  /** The absolute URL of one of its paths. */
  url(pathAndQuery) {
    return new URL(pathAndQuery, this.origin).href;
  }

  /**
   * GETs the portal's callback endpoint as the service would, with `result` for
   * `sessionToken`, signed with `secret` at `timestamp` (Unix seconds); resolves with the
   * HTTP status.
   * @param {{ result: string, sessionToken: string, timestamp: number, secret: string, signedResult?: string }} callback
   *   `signedResult`: the result the signature is computed over, when a test tampers with it
   */
  async sendCallback({ result, sessionToken, timestamp, secret, signedResult = result }) {
    const query = new URLSearchParams({
      result,
      session_token: sessionToken,
      timestamp: String(timestamp),
      signature: signCallback(secret, String(timestamp), signedResult, sessionToken),
    });
    const response = await fetch(this.url(`/eauth/callback?${query}`), { redirect: "manual" });
    return response.status;
  }

  async stop() {
    await this.program.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * A person with an account on the portal: an email and a password, and once two-factor
 * authentication is on, the authenticator app (a `User` of the service, which hands out fresh
 * codes from the secret read from the QR code).
 */
class Account {
  /**
   * @param {Pick<ExamplePortal, "url" | "service" | "app">} portal `service` and `app` only let
   *   the app's `User` ask the service about sessions; the demo's screenshots do without
   * @param {string} [email]
   */
  constructor(portal, email = `person-${crypto.randomBytes(4).toString("hex")}@example.com`) {
    this.portal = portal;
    this.email = email;
    this.password = crypto.randomBytes(12).toString("base64url");
    /** @type {User | undefined} */
    this.authenticator = undefined;
  }

  /** The authenticator app, once 2FA was set up. */
  get app() {
    if (!this.authenticator) throw new Error("two-factor authentication was not set up");
    return this.authenticator;
  }

  /** From the portal's home page, creates the account; ends on the Security page, signed in. */
  async signUp(page) {
    await page.goto(this.portal.url("/"));
    await page.getByRole("link", { name: "Create an account" }).click();
    await page.getByLabel("Email").fill(this.email);
    await page.getByLabel(/^Password/).fill(this.password);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Security");
  }

  /**
   * On the Security page, starts setting up 2FA and reads the QR code as an authenticator app
   * would; the app then holds the secret (`this.app`). Resolves with the `otpauth://` URI.
   * Does not confirm.
   */
  async scanQrCode(page) {
    await page.getByRole("button", { name: "Set up two-factor authentication" }).click();
    const { uri, secret } = await readSetup(page);
    this.authenticator = new User({ service: this.portal.service, app: this.portal.app, email: this.email, secret });
    return uri;
  }

  /** Types a code into the Security page's code field and presses the page's button. */
  async submitSecurityCode(page, code, button) {
    await page.getByLabel(/code/i).fill(code);
    await page.getByRole("button", { name: button }).click();
  }

  /** Sets up 2FA on the Security page, from the QR code, with the app's current code. */
  async setUpTwoFactor(page) {
    await this.scanQrCode(page);
    await this.submitSecurityCode(page, this.app.freshCode(), "Turn on two-factor authentication");
    await expect(page.getByRole("heading", { name: "Two-factor authentication is on" })).toBeVisible();
  }

  /** Presses "Sign out" on the home page; ends signed out on the home page. */
  async signOut(page) {
    await page.goto(this.portal.url("/"));
    await page.getByRole("button", { name: "Sign out" }).click();
    await expectSignedOut(page, this.portal);
  }

  /**
   * Fills in the sign-in form with the right password and the chosen way to the second factor
   * (`redirect`: eAuthenticator's page; `popup`), and presses Sign in.
   * @param {import("@playwright/test").Page} page
   * @param {"redirect" | "popup"} method
   */
  async enterPassword(page, method) {
    await page.goto(this.portal.url("/sign-in"));
    await page.getByLabel("Email").fill(this.email);
    await page.getByLabel("Password").fill(this.password);
    await page.getByLabel(method === "popup" ? "in a popup" : "on eAuthenticator's page").check();
    await page.getByRole("button", { name: "Sign in" }).click();
  }
}

/**
 * Decodes the QR code an `<img>` shows, from the pixels the browser drew (a screenshot of the
 * element), as a phone's camera would see it.
 * @param {import("@playwright/test").Locator} image
 */
async function readQrCode(image) {
  await expect(image).toBeVisible();
  await expect.poll(() => image.evaluate((img) => /** @type {HTMLImageElement} */ (img).complete && /** @type {HTMLImageElement} */ (img).naturalWidth > 0)).toBe(true);
  const png = PNG.sync.read(await image.screenshot());
  const found = jsQR(Uint8ClampedArray.from(png.data), png.width, png.height);
  if (!found) throw new Error("no QR code could be read from the image");
  return found.data;
}

/**
 * What the Security page offers while 2FA is being set up: the QR code's `otpauth://` URI and
 * its secret, checked to be the key the page shows as text.
 * @param {import("@playwright/test").Page} page
 */
async function readSetup(page) {
  const uri = await readQrCode(page.getByRole("img", { name: "QR code for your authenticator app" }));
  const secret = otpauthSecret(uri);
  const shownKey = /** @type {string} */ (await page.locator("#secret").textContent()).replace(/\s+/g, "");
  expect(secret.toUpperCase(), "the key shown as text").toBe(shownKey.toUpperCase());
  return { uri, secret };
}

/** The secret of an `otpauth://totp/` URI. */
function otpauthSecret(uri) {
  const secret = new URL(uri).searchParams.get("secret");
  if (!secret) throw new Error(`no secret in ${uri}`);
  return secret;
}

/** The portal's home page greets a signed-in person by email. */
async function expectSignedIn(page, portal, email) {
  await page.waitForURL(portal.url("/"));
  await expect(page.getByRole("heading", { level: 1 })).toHaveText(`Hello, ${email}`);
}

/** Nobody is signed in: the home page welcomes a stranger and the Security page sends to sign-in. */
async function expectSignedOut(page, portal) {
  await page.goto(portal.url("/"));
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Welcome");
  await page.goto(portal.url("/security"));
  await page.waitForURL(portal.url("/sign-in"));
}

module.exports = { startExamplePortal, ExamplePortal, Account, readQrCode, readSetup, expectSignedIn, expectSignedOut, PORTAL_NAME };
