// @ts-check
// Every Domain Console page, rendered in Chromium at a laptop's size (1280×800) and a phone's
// (390×844), saved full length as target/e2e-artifacts/console/NN-name-WIDTHxHEIGHT.png for
// people to look at (issue 4). The walk signs up, is refused with the form's messages,
// creates an application, fills it with sign-ins of every outcome (through the real sign-in
// page), callbacks that succeed and fail and users with devices, then visits and acts on every
// page. It fails on a browser console error (a CSP violation included), a request for a
// missing file, a page wider than the screen, content that spills out of its box, a phone's
// table cell whose value slipped under its label, or an address broken over two lines.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const { test, expect, ARTIFACTS } = require("../fixtures");
const { User } = require("../lib/service");
const { Device } = require("../lib/device");
const { ConsoleAccount } = require("../lib/console");

const OUT = path.join(ARTIFACTS, "console");
const VIEWPORTS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];
const REDIRECT_URI = "https://portal.example.com/callback";
const SESSION_TTL_SECS = 4;

// Short sessions, so that the walk has timed-out sign-ins to show without waiting long.
test.use({ sessionTtlSecs: SESSION_TTL_SECS, viewport: VIEWPORTS[0] });

/** A portal backend's callback endpoint: approvals are taken, refusals answered 503. */
async function startReceiver() {
  const server = http.createServer((request, response) => {
    const query = new URL(request.url ?? "/", "http://receiver").searchParams;
    response.statusCode = query.get("result") === "true" ? 200 : 503;
    response.end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  return { server, url: `http://127.0.0.1:${address.port}/eauth/callback` };
}

/**
 * Opens the sign-in page for a new session of `user` as its browser would (its own cookies,
 * in `request`), then lets `act(post)` submit the page's form.
 * @param {import("@playwright/test").APIRequestContext} request
 * @param {{ url: string }} service
 * @param {User} user
 * @param {string} method
 * @param {(post: (action: string, code?: string) => Promise<import("@playwright/test").APIResponse>) => Promise<unknown>} act
 */
async function signIn(request, service, user, method, act) {
  const fields = { signin_method: method, session_token: await user.sessionToken(), redirect_uri: REDIRECT_URI };
  const page = await (await request.get(`${service.url}/start-authentication?${new URLSearchParams(fields)}`)).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!csrf) throw new Error(`the sign-in page for ${user.email} has no form`);
  await act((action, code = "") =>
    request.post(`${service.url}/start-authentication`, { form: { ...fields, csrf, action, code }, maxRedirects: 0 }),
  );
}

/** Users, sign-ins of every outcome, callbacks delivered and failed, and devices. */
async function populate(request, service, app) {
  const names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
  const users = [];
  for (const name of names) users.push(await User.enroll(service, app, `${name}@example.com`));
  const [alice, bob, carol, dave, erin, frank, grace] = users;
  await Device.register(service, alice, "Alice's phone");
  await Device.register(service, grace, "eauth on grace-laptop");
  await Device.register(service, grace, "Grace's tablet");
  for (const user of [alice, bob, carol]) {
    await signIn(request, service, user, "redirect", async (post) => {
      const answer = await post("verify", user.freshCode());
      expect(answer.status(), `${user.email} approves`).toBe(303);
      user.accepted();
    });
  }
  await signIn(request, service, dave, "redirect", (post) => post("deny"));
  await signIn(request, service, bob, "popup", (post) => post("deny"));
  // Three wrong codes, then nothing: the session times out, and the user has failures.
  await signIn(request, service, erin, "redirect", async (post) => {
    for (let i = 0; i < 3; i++) await post("verify", erin.wrongCode());
  });
  // Never opened: times out without a method or address.
  await frank.sessionToken();
  // The sweeper times the pending ones out, and the worker makes its first attempts.
  await new Promise((resolve) => setTimeout(resolve, (SESSION_TTL_SECS + 3) * 1000));
  return { alice };
}

test("every console page at 1280x800 and 390x844, without console errors or overflow", async ({ page, service, request }) => {
  test.setTimeout(150_000);
  fs.mkdirSync(OUT, { recursive: true });
  for (const old of fs.readdirSync(OUT)) if (old.endsWith(".png")) fs.rmSync(path.join(OUT, old));
  const receiver = await startReceiver();
  const problems = [];
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
  // Copy buttons write to the clipboard; let them.
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: service.url });

  let n = 0;
  /** Saves the page at every size; notes a page wider than the screen or a box overflowing. */
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
          .map((box) => box.querySelector("h1, h2")?.textContent?.trim() ?? box.className),
      );
      for (const box of spills) problems.push(`${name} at ${viewport.width}px: content spills out of "${box}"`);
      // On a phone a table's cell is a row of its own: the label, then what the cell holds,
      // all of it beside the label, never under it.
      const misplaced = await page.evaluate(() =>
        [...document.querySelectorAll(".list td[data-label]")].flatMap((cell) => {
          const style = getComputedStyle(cell);
          if (style.display !== "grid") return [];
          const valuesFrom = cell.getBoundingClientRect().left + parseFloat(style.gridTemplateColumns);
          return [...cell.children].filter((child) => child.getBoundingClientRect().left < valuesFrom - 1).map(() => cell.getAttribute("data-label"));
        }),
      );
      for (const label of new Set(misplaced)) problems.push(`${name} at ${viewport.width}px: a "${label}" value sits under its label`);
      // On a laptop an address in a table is one line, never broken in the middle.
      if (viewport.width >= 1024) {
        const broken = await page.evaluate(() => [...document.querySelectorAll(".list td.address code")].filter((code) => code.getClientRects().length > 1).map((code) => code.textContent));
        for (const address of new Set(broken)) problems.push(`${name} at ${viewport.width}px: the address ${address} is broken over two lines`);
      }
      const file = `${String(n).padStart(2, "0")}-${name}-${viewport.width}x${viewport.height}.png`;
      await page.screenshot({ path: path.join(OUT, file), fullPage: true });
    }
    await page.setViewportSize(VIEWPORTS[0]);
  };
  const jane = new ConsoleAccount(page, service, "jane@example.com");
  const go = (pathname) => jane.go(pathname);

  try {
    // Signing up.
    await go("/console");
    await expect(page).toHaveURL(/\/console\/sign-in/);
    await snap("sign-in");
    await page.getByRole("link", { name: "Create an account" }).click();
    await snap("register");
    await page.getByLabel("Email").fill(jane.email);
    await page.getByLabel("Password").fill("too short");
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page.locator(".field-error")).toBeVisible();
    await snap("register-refused");
    await page.getByLabel("Password").fill(jane.password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(/\/console$/);
    await snap("applications-empty");

    // Creating an application: first with mistakes, then right.
    await page.getByRole("link", { name: "Create Application" }).first().click();
    await snap("create-application");
    await page.getByLabel("Server IP addresses").fill("203.0.113.7\n10.0.0.0/33");
    await page.getByLabel("Callback URL").fill("http://portal.example.com/eauth/callback");
    await page.getByRole("button", { name: "Create Application" }).click();
    await expect(page.getByRole("alert")).toContainText("Nothing was saved");
    await snap("create-application-refused");
    await page.getByLabel("Application name").fill("Acme Portal");
    await page.getByLabel("Server IP addresses").fill("127.0.0.1\n::1\n203.0.113.0/24");
    await page.getByLabel("Callback URL").fill(receiver.url);
    await page.getByLabel("Redirect URIs").fill(`${REDIRECT_URI}\nhttp://localhost:3000/popup`);
    await page.getByRole("button", { name: "Create Application" }).click();
    const app = await jane.shownOnce();
    expect(app.api_key).toMatch(/^eak_/);
    await expect(page.getByRole("button", { name: "Copy" }).first()).toBeVisible();
    await snap("application-created");

    // The key from the page works; then some history for the pages to show.
    const { alice } = await populate(request, service, app);
    const appPath = (tab = "") => jane.appPath(app.client_id, tab);

    await go("/console");
    await snap("applications");
    await go(appPath());
    await expect(page.locator("svg rect.approved").first()).toBeAttached();
    await snap("overview");
    await go(appPath("users"));
    await expect(page.locator("td[data-label=Devices] li")).toHaveCount(3);
    await snap("users");
    await go(`${appPath("users")}?q=bo`);
    await snap("users-search");
    await go(appPath("users"));
    await page.getByRole("button", { name: "Unlock" }).first().click();
    await snap("users-unlocked");
    await page.getByRole("link", { name: `Remove Alice's phone of ${alice.email}` }).click();
    await snap("remove-device");
    await page.getByRole("button", { name: "Remove the device" }).click();
    await snap("device-removed");
    await go(appPath("sign-ins"));
    await snap("sign-ins");
    await page.getByLabel("Outcome").selectOption("REJECTED");
    await page.getByRole("button", { name: "Filter" }).click();
    await snap("sign-ins-rejected");
    await go(appPath("callbacks"));
    await snap("callbacks");
    await page.getByRole("button", { name: "Send again" }).first().click();
    await snap("callbacks-sent-again");
    await go(appPath("integration"));
    await snap("integration");
    await go(appPath("settings"));
    await snap("settings");
    await page.getByLabel("Redirect URIs").fill("https://portal.example.com/callback#fragment");
    await page.getByRole("button", { name: "Save settings" }).click();
    await snap("settings-refused");

    // Keys and status.
    await go(appPath("keys"));
    await snap("keys");
    await page.getByRole("link", { name: "Rotate the API key…" }).click();
    await snap("rotate-api-key");
    await page.getByRole("button", { name: "Rotate the API key" }).click();
    await snap("api-key-rotated");
    await go(appPath("keys"));
    await page.getByRole("link", { name: "Rotate the callback secret…" }).click();
    await snap("rotate-callback-secret");
    await page.getByRole("button", { name: "Rotate the callback secret" }).click();
    await snap("callback-secret-rotated");
    await jane.setActive(app.client_id, false);
    await snap("deactivated");
    await jane.setActive(app.client_id, true);
    await page.getByRole("link", { name: "Delete the application…" }).click();
    await snap("delete");
    await page.getByLabel(/to confirm/).fill("Acme");
    await page.getByRole("button", { name: "Delete the application" }).click();
    await snap("delete-refused");

    // What the account did, and pages that are not there.
    await go(appPath("audit"));
    await snap("application-audit-log");
    await go("/console/audit");
    await snap("audit-log");
    await go(`/console/apps/${crypto.randomUUID()}`);
    await snap("not-found");

    // Signing out, a refused sign-in, and back in to delete for real.
    await go("/console");
    await jane.signOut();
    await page.getByLabel("Email").fill(jane.email);
    await page.getByLabel("Password").fill("not my password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await snap("sign-in-refused");
    await page.getByLabel("Password").fill(jane.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/console$/);
    await go(appPath("delete"));
    await page.getByLabel(/to confirm/).fill("Acme Portal");
    await page.getByRole("button", { name: "Delete the application" }).click();
    await page.waitForURL(/notice=deleted/);
    await snap("application-deleted");
  } finally {
    receiver.server.close();
  }
  expect(problems).toEqual([]);
});
