// @ts-check
// The sign-in page as the tests drive it: its URL, the user's actions on it, and what the
// portal sees of its outcome (the browser's arrival, the popup's answer, the callback).
"use strict";

const { expect } = require("@playwright/test");

/**
 * `GET /start-authentication`'s URL (guide, Step 4).
 * @param {{ url: string }} service
 * @param {{ method?: string, sessionToken: string, redirectUri?: string, state?: string }} params
 */
function signinUrl(service, { method = "redirect", sessionToken, redirectUri, state }) {
  const url = new URL("/start-authentication", service.url);
  url.searchParams.set("signin_method", method);
  url.searchParams.set("session_token", sessionToken);
  if (redirectUri !== undefined) url.searchParams.set("redirect_uri", redirectUri);
  if (state !== undefined) url.searchParams.set("state", state);
  return url.href;
}

/** The code field, found as a user finds it: by its label. */
const codeInput = (page) => page.getByLabel(/Enter the \d-digit code/);

/** Types a code and presses Verify. */
async function submitCode(page, code) {
  await codeInput(page).fill(code);
  await page.getByRole("button", { name: "Verify" }).click();
}

/** Presses "Deny — this wasn't me". */
async function deny(page) {
  await page.getByRole("button", { name: /^Deny/ }).click();
}

/** Waits for an outcome page with this heading (the page's ✓/✕ is CSS, not text). */
async function expectOutcome(page, heading) {
  await expect(page.getByRole("heading", { level: 1 })).toHaveText(heading);
}

/** The failure outcome's "Sign in" link, parsed. */
async function signInLink(page) {
  const link = page.getByRole("link", { name: "Sign in" });
  await expect(link).toBeVisible();
  return new URL(/** @type {string} */ (await link.getAttribute("href")));
}

/** Waits until the browser is at the portal's redirect URI; returns its query. */
async function arrivedAtPortal(page, portal) {
  await page.waitForURL((url) => url.origin === portal.origin && url.pathname === "/callback");
  return new URL(page.url()).searchParams;
}

/** A failure's "Sign in" link goes back to the redirect URI with the error and state, no token. */
function expectFailureLink(link, portal, error, state) {
  expect(`${link.origin}${link.pathname}`).toBe(portal.redirectUri);
  expect([...link.searchParams]).toEqual([
    ["error", error],
    ["state", state],
  ]);
}

/** The one callback the portal got for `token`: verified, with this result. */
async function expectOneVerifiedCallback(portal, token, result) {
  const callback = await portal.waitForCallback(token);
  expect(callback, callback.problem ?? "").toMatchObject({ verified: true, result });
  expect(portal.callbacksFor(token)).toHaveLength(1);
  return callback;
}

/** Opens the portal's popup page and presses its button; resolves with the sign-in popup. */
async function openPopup(page, portal, token, service) {
  await page.goto(portal.popupPageUrl(token));
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.getByRole("button", { name: "Sign in with eAuthenticator" }).click()]);
  await popup.waitForLoadState();
  expect(new URL(popup.url()).origin).toBe(service.origin);
  return popup;
}

/** What the portal page's eauth.js call came to: `{ok, sessionToken, state}` or `{ok, code}`. */
async function portalResult(page) {
  const result = page.locator("#result");
  await expect(result).toHaveAttribute("data-status", "done");
  return JSON.parse(/** @type {string} */ (await result.textContent()));
}

module.exports = { signinUrl, codeInput, submitCode, deny, expectOutcome, signInLink, arrivedAtPortal, expectFailureLink, expectOneVerifiedCallback, openPopup, portalResult };
