// @ts-check
// The whole life of a 2FA user through the example portal (crates/eauth-portal, the
// `eauth-portal` binary), as a person lives it in the browser: sign up, set up 2FA from the
// QR code, sign in by redirect and by popup, a wrong code, a refusal, a timeout, turning 2FA
// off; and a forged callback that must not let anyone in.
"use strict";

const { test, expect } = require("../fixtures");
const { submitCode, deny, expectOutcome } = require("../lib/signin-page");
const { expectSignedIn, expectSignedOut, readSetup } = require("../lib/example-portal");

/**
 * Collects the page's console errors: a CSP violation, a script error, a file that failed to
 * load. A page that answered with an error status on purpose (a form refused with 422) is not one.
 */
function consoleErrors(page) {
  const errors = [];
  const refusedPages = new Set();
  page.on("response", (response) => {
    if (response.request().resourceType() === "document" && response.status() >= 400) refusedPages.add(response.url());
  });
  page.on("console", (message) => {
    const { url } = message.location();
    if (message.type() === "error" && !(refusedPages.has(url) && message.text().startsWith("Failed to load resource"))) {
      errors.push(`${url}: ${message.text()}`);
    }
  });
  return errors;
}

/** Waits for eAuthenticator's sign-in page; returns the session token in its URL. */
async function atSignInPage(page, service) {
  await page.waitForURL((url) => url.origin === service.origin && url.pathname === "/start-authentication");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Verify it's you");
  return /** @type {string} */ (new URL(page.url()).searchParams.get("session_token"));
}

/** The portal's sign-in form, showing `notice` above it, with nobody signed in. */
async function expectBackAtSignIn(page, examplePortal, notice) {
  await expect(page).toHaveURL((url) => url.origin === examplePortal.origin && url.pathname === "/sign-in");
  await expect(page.getByRole("status")).toHaveText(notice);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Sign in");
  await expectSignedOut(page, examplePortal);
}

test("a new user signs up, sets up 2FA from the QR code on the Security page, and signs out", async ({ page, service, examplePortal, account }) => {
  const errors = consoleErrors(page);
  await account.signUp(page);
  await expect(page.getByRole("heading", { name: "Two-factor authentication is off" })).toBeVisible();

  const uri = await account.scanQrCode(page);
  // The guide's format: the portal as issuer, the user's email, and the application's client_id.
  const parsed = new URL(uri);
  expect(`${parsed.protocol}//${parsed.host}`).toBe("otpauth://totp");
  expect(decodeURIComponent(parsed.pathname)).toBe(`/${examplePortal.name}:${account.email}`);
  expect(Object.fromEntries(parsed.searchParams)).toMatchObject({
    issuer: examplePortal.name,
    email: account.email,
    client_id: examplePortal.app.client_id,
    algorithm: "SHA1",
    digits: "6",
  });
  // Not enrolled with the service before the first code is confirmed.
  expect((await service.api(examplePortal.app.api_key, "session-token", { email: account.email, client_id: examplePortal.app.client_id })).body.code).toBe("MFA_NOT_ENABLED");

  await account.submitSecurityCode(page, account.app.wrongCode(), "Turn on two-factor authentication");
  await expect(page.getByRole("alert")).toHaveText("That code is not correct. Enter the code your app shows now.");
  // The same secret is still offered.
  expect((await readSetup(page)).secret).toBe(account.app.secret);
  await account.submitSecurityCode(page, account.app.freshCode(), "Turn on two-factor authentication");
  await expect(page.getByRole("heading", { name: "Two-factor authentication is on" })).toBeVisible();
  // The service now has the user: the portal can open sign-in sessions for them.
  await account.app.sessionToken();

  await page.goto(examplePortal.url("/"));
  await expect(page.getByRole("heading", { level: 1 })).toHaveText(`Hello, ${account.email}`);
  await account.signOut(page);
  expect(errors).toEqual([]);
});

test("a user with 2FA signs in by redirect: password, then the code on eAuthenticator's page", async ({ page, service, examplePortal, twoFactorAccount: account }) => {
  const errors = consoleErrors(page);
  await account.enterPassword(page, "redirect");
  const token = await atSignInPage(page, service);
  await expect(page.getByText(examplePortal.name)).toBeVisible();

  await submitCode(page, account.app.freshCode());
  await expectSignedIn(page, examplePortal, account.email);
  account.app.accepted();
  expect(await account.app.sessionStatus(token)).toMatchObject({ status: "APPROVED" });
  expect(errors.filter((error) => !error.startsWith(service.origin))).toEqual([]);
});

test("a user with 2FA signs in by popup: the code in eAuthenticator's popup, which closes", async ({ page, service, examplePortal, twoFactorAccount: account }) => {
  const errors = consoleErrors(page);
  await account.enterPassword(page, "popup");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("One more step");
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.getByRole("button", { name: "Continue with eAuthenticator" }).click()]);
  const token = await atSignInPage(popup, service);

  const closed = popup.waitForEvent("close");
  await submitCode(popup, account.app.freshCode());
  await closed;
  account.app.accepted();
  await expectSignedIn(page, examplePortal, account.email);
  expect(await account.app.sessionStatus(token)).toMatchObject({ status: "APPROVED" });
  expect(errors).toEqual([]);
});

test("when eAuthenticator's script cannot be loaded, the popup sign-in says so instead of doing nothing", async ({ page, service, examplePortal, twoFactorAccount: account }) => {
  // As in the demo when the browser has not accepted the service's certificate yet.
  await page.route(`${service.origin}/sdk/eauth.js`, (route) => route.abort("connectionrefused"));
  await account.enterPassword(page, "popup");
  await page.getByRole("button", { name: "Continue with eAuthenticator" }).click();
  await expect(page.getByRole("alert")).toHaveText("eAuthenticator cannot be reached right now. Sign in again in a moment.");
  await expectSignedOut(page, examplePortal);
});

test("a wrong code on the sign-in page is refused with the attempts left, and the right one then signs in", async ({ page, service, examplePortal, twoFactorAccount: account }) => {
  await account.enterPassword(page, "redirect");
  await atSignInPage(page, service);

  await submitCode(page, account.app.wrongCode());
  await expect(page.getByRole("alert")).toHaveText("That code is not correct. 4 attempts left.");
  await submitCode(page, account.app.freshCode());
  await expectSignedIn(page, examplePortal, account.email);
  account.app.accepted();
});

test("a refused sign-in (Deny) lands back on the portal's sign-in page with its message", async ({ page, service, examplePortal, twoFactorAccount: account }) => {
  await account.enterPassword(page, "redirect");
  const token = await atSignInPage(page, service);

  await deny(page);
  await expectOutcome(page, "Sign-in denied");
  await page.getByRole("link", { name: "Sign in" }).click();
  await expectBackAtSignIn(page, examplePortal, "The sign-in was refused at the second step. Try again.");
  expect(await account.app.sessionStatus(token)).toMatchObject({ status: "REJECTED" });
});

test.describe("with a 3-second session", () => {
  test.use({ sessionTtlSecs: 3 });

  test("a sign-in left alone times out and lands back on the portal's sign-in page with the timeout message", async ({ page, service, examplePortal, twoFactorAccount: account }) => {
    await account.enterPassword(page, "redirect");
    const token = await atSignInPage(page, service);

    // The page reloads itself when its countdown ends.
    await expectOutcome(page, "This sign-in has expired");
    await page.getByRole("link", { name: "Sign in" }).click();
    await expectBackAtSignIn(page, examplePortal, "The second step took too long. Sign in again.");
    expect(await account.app.sessionStatus(token)).toMatchObject({ status: "TIMEOUT" });
  });
});

test("a signed-in user turns 2FA off with a current code; then the password alone signs in", async ({ page, service, examplePortal, twoFactorAccount: account }) => {
  await account.enterPassword(page, "redirect");
  await atSignInPage(page, service);
  await submitCode(page, account.app.freshCode());
  await expectSignedIn(page, examplePortal, account.email);
  account.app.accepted();

  await page.getByRole("link", { name: "Security settings" }).click();
  await account.submitSecurityCode(page, account.app.wrongCode(), "Turn off two-factor authentication");
  await expect(page.getByRole("alert")).toHaveText("That code is not correct.");
  await expect(page.getByRole("heading", { name: "Two-factor authentication is on" })).toBeVisible();
  await account.submitSecurityCode(page, account.app.freshCode(), "Turn off two-factor authentication");
  await expect(page.getByRole("heading", { name: "Two-factor authentication is off" })).toBeVisible();
  // The service forgot the user's secret.
  const { status, body } = await service.api(examplePortal.app.api_key, "session-token", { email: account.email, client_id: examplePortal.app.client_id });
  expect([status, body.code]).toEqual([409, "MFA_NOT_ENABLED"]);

  await account.signOut(page);
  const toService = [];
  page.on("request", (request) => {
    if (new URL(request.url()).origin === service.origin) toService.push(request.url());
  });
  await account.enterPassword(page, "redirect");
  await expectSignedIn(page, examplePortal, account.email);
  expect(toService).toEqual([]);
});

test("a forged callback with result=true (bad signature, tampered result, stale timestamp) signs nobody in", async ({ page, service, examplePortal, twoFactorAccount: account }) => {
  await account.enterPassword(page, "redirect");
  // The attacker knows the password and so has a pending sign-in and its session token.
  const token = await atSignInPage(page, service);
  const secret = examplePortal.app.callback_secret;
  const now = Math.floor(Date.now() / 1000);

  const forgeries = {
    "a signature with another key": { result: "true", sessionToken: token, timestamp: now, secret: "not-the-callback-secret" },
    "a signature over result=false": { result: "true", signedResult: "false", sessionToken: token, timestamp: now, secret },
    "a genuine signature ten minutes old": { result: "true", sessionToken: token, timestamp: now - 600, secret },
  };
  for (const [what, callback] of Object.entries(forgeries)) {
    expect(await examplePortal.sendCallback(callback), what).toBe(400);
  }
  // The endpoint does take a genuine, fresh callback (here for a sign-in it does not know).
  expect(await examplePortal.sendCallback({ result: "true", sessionToken: "unknown-token", timestamp: now, secret })).toBe(200);

  // The browser comes back as if eAuthenticator had sent it.
  await page.goto(examplePortal.url(`/callback?${new URLSearchParams({ session_token: token })}`));
  await expectBackAtSignIn(page, examplePortal, "The sign-in was refused at the second step. Try again.");
  expect(await account.app.sessionStatus(token)).toMatchObject({ status: "PENDING" });
});
