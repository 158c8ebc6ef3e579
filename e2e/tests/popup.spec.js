// @ts-check
// Signing in with a popup (guide, Step 4 Option 2 and Step 5): a portal page on another origin
// opens the sign-in page through the service's eauth.js and learns the outcome by postMessage.
"use strict";

const { test, expect } = require("../fixtures");
const { submitCode, deny, expectOutcome, openPopup, portalResult } = require("../lib/signin-page");

/**
 * Presses the failure page's "Sign in", which posts the outcome and closes the popup at once:
 * on a busy machine the popup can be gone before the click's own round trip returns.
 */
async function pressSignInAndClose(popup) {
  const closed = popup.waitForEvent("close");
  await popup
    .getByRole("button", { name: "Sign in" })
    .click()
    .catch((error) => {
      if (!popup.isClosed()) throw error;
    });
  await closed;
}

test("a portal on another origin signs in with a popup: it gets the session token and its state, and the popup closes", async ({ page, service, portal, user, snap }) => {
  const token = await user.sessionToken();
  const popup = await openPopup(page, portal, token, service);
  const state = new URL(popup.url()).searchParams.get("state");
  expect(state).toMatch(/^[0-9a-f]{64}$/);
  await expect(popup.getByRole("heading", { level: 1 })).toHaveText("Verify it's you");
  await snap(popup, "popup-signin");
  // Forgeries eauth.js must ignore: the right state from the wrong origin, and a message from
  // the service's origin with the wrong state.
  await page.evaluate((s) => window.postMessage({ session_token: "forged", state: s }, "*"), state);
  await popup.evaluate(() => window.opener.postMessage({ session_token: "forged", state: "not-the-state" }, "*"));
  await page.waitForFunction(() => window["messagesSeen"] === 2);
  await expect(page.locator("#result")).toHaveAttribute("data-status", "waiting");

  const closed = popup.waitForEvent("close");
  await submitCode(popup, user.freshCode());
  await closed;
  user.accepted();

  expect(await portalResult(page)).toEqual({ ok: true, sessionToken: token, state });
  const callback = await portal.waitForCallback(token);
  expect(callback, callback.problem ?? "").toMatchObject({ verified: true, result: "true" });
  expect(portal.callbacksFor(token)).toHaveLength(1);
});

test("a user who denies in the popup sends REJECT to the portal page when they press Sign in", async ({ page, service, portal, user, snap }) => {
  const token = await user.sessionToken();
  const popup = await openPopup(page, portal, token, service);

  await deny(popup);
  await expectOutcome(popup, "Sign-in denied");
  await snap(popup, "popup-denied");
  const callback = await portal.waitForCallback(token);
  expect(callback, callback.problem ?? "").toMatchObject({ verified: true, result: "false" });
  // Nothing is posted before the user has read the page and pressed the button.
  await expect(page.locator("#result")).toHaveAttribute("data-status", "waiting");

  await pressSignInAndClose(popup);
  expect(await portalResult(page)).toEqual({ ok: false, code: "REJECT" });
});

test.describe("with a 3-second session", () => {
  test.use({ sessionTtlSecs: 3 });

  test("a popup sign-in left alone sends TIMEOUT to the portal page when the user presses Sign in", async ({ page, service, portal, user, snap }) => {
    const token = await user.sessionToken();
    const popup = await openPopup(page, portal, token, service);

    // The popup reloads itself when its countdown ends.
    await expectOutcome(popup, "This sign-in has expired");
    await snap(popup, "popup-expired");
    const callback = await portal.waitForCallback(token);
    expect(callback, callback.problem ?? "").toMatchObject({ verified: true, result: "false" });

    await pressSignInAndClose(popup);
    expect(await portalResult(page)).toEqual({ ok: false, code: "TIMEOUT" });
  });
});
