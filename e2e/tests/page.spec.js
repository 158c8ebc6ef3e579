// @ts-check
// The sign-in page itself: the code field a phone can fill, the headers that keep the page
// and its session token to itself, and how it looks in a phone's webview and in a popup.
"use strict";

const { test, expect } = require("../fixtures");
const { signinUrl, codeInput } = require("../lib/signin-page");

test("the sign-in page has a labelled one-time-code field and sends strict security headers", async ({ page, service, portal, user, snap }) => {
  const consoleErrors = [];
  page.on("console", (message) => {
    // Chromium asks for /favicon.ico, which the service does not serve.
    if (message.type() === "error" && !message.location().url.endsWith("/favicon.ico")) consoleErrors.push(message.text());
  });
  const token = await user.sessionToken();
  const response = await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state: "s" }));

  const headers = /** @type {NonNullable<typeof response>} */ (response).headers();
  const csp = headers["content-security-policy"];
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain("unsafe-inline");
  expect(csp).not.toContain("unsafe-eval");
  expect(headers["referrer-policy"]).toBe("no-referrer");
  expect(headers["cache-control"]).toBe("no-store");

  const input = codeInput(page);
  await expect(input).toHaveAttribute("autocomplete", "one-time-code");
  await expect(input).toHaveAttribute("inputmode", "numeric");
  await expect(input).toHaveAttribute("id", "code");
  await expect(page.locator("label[for=code]")).toHaveText("Enter the 6-digit code from your eAuthenticator app");
  await expect(input).toBeFocused();
  await expect(page.getByText("Test Portal")).toBeVisible();
  await expect(page.locator(".countdown .remaining")).toHaveText(/^[12]:\d\d$/);

  await snap(page, "signin-390x844");
  await page.emulateMedia({ colorScheme: "dark" });
  await snap(page, "signin-390x844-dark");
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 500, height: 600 });
  await snap(page, "signin-500x600");
  // Nothing overflows sideways in either size.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(500);

  // A CSP violation or a script error shows up here.
  expect(consoleErrors).toEqual([]);
});
