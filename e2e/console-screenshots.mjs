// Screenshots of every Domain Console page, at a laptop's and a phone's size, for people to
// look at (issue 4: "every page rendered at 1280×800 and 390×844 ... look at them").
//
// A real Chromium signs up, is refused with the form's messages, creates an application,
// reads its API key off the page and uses it against the API, fills the application with
// sign-ins of every outcome (through the real sign-in page) and callbacks that succeed and
// fail, then visits and acts on every console page. Each page is saved, full length, as
// target/e2e-artifacts/console/NN-name-WIDTHxHEIGHT.png. The run fails on a browser console
// error (a CSP violation included), on a request for a missing file, or on a page that is
// wider than the phone's screen.
//
//   cargo build --bin eauthd
//   (cd e2e && npm ci)
//   node e2e/console-screenshots.mjs
//
// EAUTHD names the binary (default: $CARGO_TARGET_DIR or target/, then debug/eauthd);
// CHROMIUM the browser (default: Debian's /usr/bin/chromium).

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium, request } from "playwright-core";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.join(REPO, "target", "e2e-artifacts", "console");
const EAUTHD =
  process.env.EAUTHD ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO, "target"), "debug", "eauthd");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const VIEWPORTS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];
const PASSWORD = "correct horse battery staple";
const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const REDIRECT_URI = "https://portal.example.com/callback";
const SESSION_TTL_SECS = 4;

/** eauthd on a free port with a data directory of its own; resolves once it serves. */
function startService() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "eauth-console-shots-"));
  const child = spawn(EAUTHD, [], {
    env: {
      ...process.env,
      EAUTH_DATA_DIR: dataDir,
      EAUTH_LISTEN: "127.0.0.1:0",
      EAUTH_SESSION_TTL_SECS: String(SESSION_TTL_SECS),
      EAUTH_LOG: "error",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const served = /eauthd serving (\S+)/.exec(output);
      if (served) resolve({ url: served[1], child, dataDir });
    });
    child.on("exit", (code) => reject(new Error(`eauthd exited with ${code}: ${output}`)));
  });
}

/** A portal backend's callback endpoint: approvals are taken, refusals answered 503. */
function startReceiver() {
  const server = http.createServer((req, res) => {
    const query = new URL(req.url, "http://receiver").searchParams;
    res.statusCode = query.get("result") === "true" ? 200 : 503;
    res.end();
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${server.address().port}/eauth/callback` }));
  });
}

/** RFC 6238 with SHA-1, 6 digits, 30 s, for the enrolled users' secret. */
function totp(secretBase32, at = Date.now() / 1000) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secretBase32.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30)));
  const mac = crypto.createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** The integration API and the sign-in page, as a portal and its users use them. */
class Portal {
  constructor(api, clientId, apiKey) {
    Object.assign(this, { api, clientId, apiKey });
  }

  async call(endpoint, body) {
    const response = await this.api.post(`/authen-api/api/v1/${endpoint}`, {
      headers: { "X-API-Key": this.apiKey },
      data: { client_id: this.clientId, ...body },
    });
    return response.json();
  }

  async enroll(email) {
    const answer = await this.call("mfa/toggle", {
      email, secret: SECRET, action: "ENABLE", type: "TOTP", algorithm: "SHA1", digits: 6, period: 30,
    });
    check(answer.code === "SUCCESS", `enroll ${email}: ${JSON.stringify(answer)}`);
  }

  async sessionToken(email) {
    const answer = await this.call("session-token", { email });
    check(answer.code === "SUCCESS", `session-token with the key from the page: ${JSON.stringify(answer)}`);
    return answer.data.session_token;
  }

  /** Opens the sign-in page for a new session of `email`; `act(post)` then submits codes. */
  async signIn(email, method, act) {
    const token = await this.sessionToken(email);
    const fields = { signin_method: method, session_token: token, redirect_uri: REDIRECT_URI };
    const page = await (await this.api.get(`/start-authentication?${new URLSearchParams(fields)}`)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
    check(csrf, `the sign-in page for ${email} has a form`);
    const post = (action, code = "") =>
      this.api.post("/start-authentication", { form: { ...fields, csrf, action, code }, maxRedirects: 0 });
    await act(post);
  }
}

async function populate(portal) {
  const users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"].map((n) => `${n}@example.com`);
  for (const user of users) await portal.enroll(user);
  // Approved: each user's code of this step is used once, so three users approve.
  for (const user of users.slice(0, 3)) {
    await portal.signIn(user, "redirect", async (post) => {
      const answer = await post("verify", totp(SECRET));
      check(answer.status() === 303, `${user} approves: HTTP ${answer.status()}`);
    });
  }
  await portal.signIn(users[3], "redirect", (post) => post("deny"));
  await portal.signIn(users[1], "popup", (post) => post("deny"));
  // Three wrong codes, then nothing: the session times out, and the user has failures.
  await portal.signIn(users[4], "redirect", async (post) => {
    const wrong = String((Number(totp(SECRET)) + 500_000) % 1_000_000).padStart(6, "0");
    for (let i = 0; i < 3; i++) await post("verify", wrong);
  });
  // Never opened: times out without a method or address.
  await portal.sessionToken(users[5]);
  // The sweeper times the pending ones out, and the worker makes its first attempts.
  await new Promise((r) => setTimeout(r, (SESSION_TTL_SECS + 3) * 1000));
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  for (const old of fs.readdirSync(OUT)) if (old.endsWith(".png")) fs.rmSync(path.join(OUT, old));
  const service = await startService();
  const receiver = await startReceiver();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  const api = await request.newContext({ baseURL: service.url, ignoreHTTPSErrors: true });
  const problems = [];
  const saved = [];
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: VIEWPORTS[0] });
    // Copy buttons write to the clipboard; let them.
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: service.url });
    const page = await context.newPage();
    page.on("console", (message) => {
      // Pages that refuse a form answer 4xx on purpose; Chromium reports those as errors too.
      const ownStatus = message.location().url === page.url() && message.text().startsWith("Failed to load resource");
      if (message.type() === "error" && !ownStatus) problems.push(`${page.url()}: console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`${page.url()}: ${error.message}`));
    page.on("response", (response) => {
      if (response.url().startsWith(service.url) && response.url().includes("/assets/") && !response.ok()) {
        problems.push(`${response.url()}: HTTP ${response.status()}`);
      }
    });

    let n = 0;
    /** Saves the page at every size; complains if the phone has to scroll sideways. */
    const snap = async (name) => {
      n += 1;
      for (const viewport of VIEWPORTS) {
        await page.setViewportSize(viewport);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        if (overflow > 0) problems.push(`${name} at ${viewport.width}px: ${overflow}px wider than the screen`);
        // Content that sticks out of its box (scrolling code and tables scroll inside theirs).
        const spills = await page.evaluate(() =>
          [...document.querySelectorAll(".panel, .card, .topbar")]
            .filter((box) => box.scrollWidth > box.clientWidth + 1)
            .map((box) => box.querySelector("h1, h2")?.textContent?.trim() ?? box.className));
        for (const box of spills) problems.push(`${name} at ${viewport.width}px: content spills out of "${box}"`);
        const file = `${String(n).padStart(2, "0")}-${name}-${viewport.width}x${viewport.height}.png`;
        await page.screenshot({ path: path.join(OUT, file), fullPage: true });
        saved.push(file);
      }
      await page.setViewportSize(VIEWPORTS[0]);
    };
    const go = (pathname) => page.goto(`${service.url}${pathname}`);

    // Signing up.
    await go("/console");
    check(page.url().includes("/console/sign-in"), "the console asks to sign in first");
    await snap("sign-in");
    await page.getByRole("link", { name: "Create an account" }).click();
    await snap("register");
    await page.getByLabel("Email").fill("jane@example.com");
    await page.getByLabel("Password").fill("too short");
    await page.getByRole("button", { name: "Create account" }).click();
    await snap("register-refused");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(/\/console$/);
    await snap("applications-empty");

    // Creating an application: first with mistakes, then right.
    await page.getByRole("link", { name: "Create Application" }).first().click();
    await snap("create-application");
    await page.getByLabel("Server IP addresses").fill("203.0.113.7\n10.0.0.0/33");
    await page.getByLabel("Callback URL").fill("http://portal.example.com/eauth/callback");
    await page.getByRole("button", { name: "Create Application" }).click();
    await snap("create-application-refused");
    await page.getByLabel("Application name").fill("Acme Portal");
    await page.getByLabel("Server IP addresses").fill("127.0.0.1\n::1\n203.0.113.0/24");
    await page.getByLabel("Callback URL").fill(receiver.url);
    await page.getByLabel("Redirect URIs").fill(`${REDIRECT_URI}\nhttp://localhost:3000/popup`);
    await page.getByRole("button", { name: "Create Application" }).click();
    const clientId = (await page.locator("#client-id").textContent()).trim();
    const apiKey = (await page.locator("#api-key").textContent()).trim();
    check(apiKey.startsWith("eak_"), "the API key is on the page");
    check(await page.getByRole("button", { name: "Copy" }).first().isVisible(), "copy buttons show with JavaScript");
    await snap("application-created");

    // The key from the page works; then some history for the pages to show.
    await populate(new Portal(api, clientId, apiKey));
    const app = `/console/apps/${clientId}`;

    await go("/console");
    await snap("applications");
    await go(app);
    check((await page.locator("svg rect.approved").count()) > 0, "the chart shows the approvals");
    await snap("overview");
    await go(`${app}/users`);
    await snap("users");
    await go(`${app}/users?q=bo`);
    await snap("users-search");
    await page.goto(`${service.url}${app}/users`);
    await page.getByRole("button", { name: "Unlock" }).first().click();
    await snap("users-unlocked");
    await go(`${app}/sign-ins`);
    await snap("sign-ins");
    await page.getByLabel("Outcome").selectOption("REJECTED");
    await page.getByRole("button", { name: "Filter" }).click();
    await snap("sign-ins-rejected");
    await go(`${app}/callbacks`);
    await snap("callbacks");
    await page.getByRole("button", { name: "Send again" }).first().click();
    await snap("callbacks-sent-again");
    await go(`${app}/integration`);
    await snap("integration");
    await go(`${app}/settings`);
    await snap("settings");
    await page.getByLabel("Redirect URIs").fill("https://portal.example.com/callback#fragment");
    await page.getByRole("button", { name: "Save settings" }).click();
    await snap("settings-refused");

    // Keys and status.
    await go(`${app}/keys`);
    await snap("keys");
    await page.getByRole("link", { name: "Rotate the API key…" }).click();
    await snap("rotate-api-key");
    await page.getByRole("button", { name: "Rotate the API key" }).click();
    const newKey = (await page.locator("#api-key").textContent()).trim();
    const refused = await new Portal(api, clientId, apiKey).call("session-token", { email: "alice@example.com" });
    check(refused.code === "INVALID_API_KEY", `the old key is refused after rotation: ${JSON.stringify(refused)}`);
    await new Portal(api, clientId, newKey).sessionToken("alice@example.com");
    await snap("api-key-rotated");
    await go(`${app}/keys`);
    await page.getByRole("link", { name: "Rotate the callback secret…" }).click();
    await snap("rotate-callback-secret");
    await page.getByRole("button", { name: "Rotate the callback secret" }).click();
    await snap("callback-secret-rotated");
    await go(`${app}/keys`);
    await page.getByRole("button", { name: "Deactivate" }).click();
    const inactive = await new Portal(api, clientId, newKey).call("session-token", { email: "alice@example.com" });
    check(inactive.code === "INACTIVE", `deactivated: ${JSON.stringify(inactive)}`);
    await snap("deactivated");
    await page.getByRole("button", { name: "Activate" }).click();
    await page.getByRole("link", { name: "Delete the application…" }).click();
    await snap("delete");
    await page.getByLabel(/to confirm/).fill("Acme");
    await page.getByRole("button", { name: "Delete the application" }).click();
    await snap("delete-refused");

    // What the account did, and pages that are not there.
    await go(`${app}/audit`);
    await snap("application-audit-log");
    await go("/console/audit");
    await snap("audit-log");
    await go(`/console/apps/${crypto.randomUUID()}`);
    await snap("not-found");

    // Signing out, a refused sign-in, and back in to delete for real.
    await go("/console");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/sign-in/);
    await page.getByLabel("Email").fill("jane@example.com");
    await page.getByLabel("Password").fill("not my password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await snap("sign-in-refused");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/console$/);
    await go(`${app}/delete`);
    await page.getByLabel(/to confirm/).fill("Acme Portal");
    await page.getByRole("button", { name: "Delete the application" }).click();
    await page.waitForURL(/notice=deleted/);
    await snap("application-deleted");
    await context.close();
  } finally {
    await api.dispose();
    await browser.close();
    receiver.server.close();
    service.child.kill("SIGTERM");
    fs.rmSync(service.dataDir, { recursive: true, force: true });
  }
  console.log(`${saved.length} screenshots in ${path.relative(process.cwd(), OUT) || "."}`);
  if (problems.length > 0) {
    console.error(`Problems:\n  ${problems.join("\n  ")}`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
