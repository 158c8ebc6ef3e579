// @ts-check
// The sign-in page as the tests drive it: its URL, and the user's actions on it.
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

module.exports = { signinUrl, codeInput, submitCode, deny, expectOutcome, signInLink };
