// The README's demo, step by step, as screenshots: starts `eauthd serve --demo` in a temporary
// directory (the demo portal listens on 127.0.0.1:3000, which must be free), walks a new
// user's life in Chromium at 1280×800 and saves one PNG per step into docs/screenshots/.
//
//   cargo build --bin eauthd && node e2e/demo-screenshots.mjs
//
// `$EAUTHD` names another eauthd binary, `$CHROMIUM` another browser. Not a test: the browser
// tests (e2e/tests/) check the same steps.

import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

import { chromium } from "@playwright/test";

import { Account } from "./lib/example-portal.js";
import { REPO_ROOT, binary, cleanEnv, startProgram } from "./lib/program.js";
import { submitCode, deny, expectOutcome } from "./lib/signin-page.js";

const PORTAL = "http://localhost:3000";
const OUT = path.join(REPO_ROOT, "docs", "screenshots");

/** Resolves if nothing listens on 127.0.0.1:`port`, else rejects saying so. */
function ensureFree(port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", () => reject(new Error(`127.0.0.1:${port} is in use: the demo portal needs it; stop what runs there first`)));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(undefined)));
  });
}

async function main() {
  await ensureFree(3000);
  fs.mkdirSync(OUT, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "eauth-demo-"));
  // The service on any free port (the screenshots show no address bar); the shell's
  // EAUTH_* and PORTAL_* settings stay out.
  const env = cleanEnv(["EAUTH_", "PORTAL_"], { EAUTH_LISTEN: "127.0.0.1:0" });
  const demo = await startProgram({
    file: binary("eauthd", "EAUTHD"),
    args: ["serve", "--demo"],
    cwd: dir,
    env,
    logPath: path.join(dir, "eauthd.log"),
    ready: /^Demo: .* running at http:\/\/localhost:3000/,
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const saved = [];
    const shot = async (name) => {
      const file = path.join(OUT, `${name}.png`);
      await page.screenshot({ path: file });
      saved.push(file);
    };
    const portal = { url: (p) => new URL(p, PORTAL).href, service: undefined, app: undefined };
    const alice = new Account(portal, "alice@example.com");

    // 1. The portal, and 2. its sign-up form.
    await page.goto(PORTAL);
    await shot("1-portal-home");
    await page.getByRole("link", { name: "Create an account" }).click();
    await page.getByLabel("Email").fill(alice.email);
    await page.getByLabel(/^Password/).fill(alice.password);
    await shot("2-sign-up");
    await page.getByRole("button", { name: "Create account" }).click();

    // 3. The Security page with the QR code (read by the tests' "app"), and 4. 2FA on.
    await alice.scanQrCode(page);
    await page.getByLabel("Code from the app").fill(alice.app.freshCode());
    await shot("3-security-qr-code");
    await page.getByRole("button", { name: "Turn on two-factor authentication" }).click();
    await page.getByRole("heading", { name: "Two-factor authentication is on" }).waitFor();
    await shot("4-two-factor-on");

    // 5. Signing in again: the password, then 6. eAuthenticator's page asks for the code, and
    // 7. the user is in.
    await alice.signOut(page);
    await page.goto(portal.url("/sign-in"));
    await page.getByLabel("Email").fill(alice.email);
    await page.getByLabel("Password").fill(alice.password);
    await shot("5-sign-in");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Verify it's you" }).waitFor();
    await page.getByLabel(/Enter the \d-digit code/).fill(alice.app.freshCode());
    await shot("6-eauthenticator-code");
    await submitCode(page, alice.app.freshCode());
    alice.app.accepted();
    await page.getByRole("heading", { name: `Hello, ${alice.email}` }).waitFor();
    await shot("7-signed-in");

    // 8. A refused sign-in ("Deny — this wasn't me") lands back on the portal with a message.
    await alice.signOut(page);
    await alice.enterPassword(page, "redirect");
    await page.getByRole("heading", { name: "Verify it's you" }).waitFor();
    await deny(page);
    await expectOutcome(page, "Sign-in denied");
    await page.getByRole("link", { name: "Sign in" }).click();
    await page.getByRole("status").waitFor();
    await shot("8-refused-sign-in");

    for (const file of saved) console.log(`${path.relative(REPO_ROOT, file)}  ${fs.statSync(file).size} bytes`);
  } finally {
    await browser.close();
    await demo.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
