// @ts-check
// Signing in with a redirect (guide, Step 4 Option 1 and Step 5): every ending, as the user
// sees it in the browser and as the portal's backend hears it in the signed callback.
"use strict";

const crypto = require("node:crypto");
const { test, expect } = require("../fixtures");
const { signinUrl, codeInput, submitCode, deny, expectOutcome, signInLink, arrivedAtPortal, expectFailureLink, expectOneVerifiedCallback } = require("../lib/signin-page");

const newState = () => crypto.randomBytes(8).toString("hex");

/** Types the right code and waits to land on the portal; returns the query it landed with. */
async function approve(page, portal, user) {
  await submitCode(page, user.freshCode());
  const query = await arrivedAtPortal(page, portal);
  user.accepted();
  return query;
}

/** Opens the sign-in page in `page` and in another tab, which it returns, left open. */
async function openInTwoTabs(context, page, url) {
  const other = await context.newPage();
  await other.goto(url);
  await page.goto(url);
  return other;
}

test("a user who types the right code lands on the redirect URI with the session token, and the portal already has a verified callback", async ({ page, service, portal, user }) => {
  const token = await user.sessionToken();
  const state = newState();
  await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state }));

  const query = await approve(page, portal, user);
  expect([...query]).toEqual([
    ["session_token", token],
    ["state", state],
  ]);
  const arrival = portal.arrivals[0];
  const callback = await expectOneVerifiedCallback(portal, token, "true");
  // The service gives the callback a head start: it comes first, or at worst just after.
  expect(callback.at).toBeLessThanOrEqual(arrival.at + 1000);
  expect(await user.sessionStatus(token)).toMatchObject({ status: "APPROVED" });
});

test("a wrong code is refused with the attempts left, and the right code then signs in", async ({ page, service, portal, user, snap }) => {
  const token = await user.sessionToken();
  await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state: newState() }));
  const posts = [];
  page.on("request", (request) => {
    if (request.method() === "POST") posts.push(`${request.resourceType()} ${new URL(request.url()).pathname}`);
  });

  await submitCode(page, user.wrongCode());
  await expect(page.getByRole("alert")).toHaveText("That code is not correct. 4 attempts left.");
  await expect(codeInput(page)).toHaveAttribute("aria-invalid", "true");
  await expect(codeInput(page)).toBeFocused();
  await expect(codeInput(page)).toHaveValue("");
  await snap(page, "outcome-wrong-code");

  const query = await approve(page, portal, user);
  // Each press was one request of the page's script, not a fallback to a full form post.
  expect(posts).toEqual(["fetch /start-authentication", "fetch /start-authentication"]);
  expect(query.get("session_token")).toBe(token);
  await expectOneVerifiedCallback(portal, token, "true");
});

test("five wrong codes end the sign-in as REJECT: the user has no access and the Sign in link carries error=REJECT", async ({ page, service, portal, user, snap }) => {
  const token = await user.sessionToken();
  const state = newState();
  await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state }));

  for (const left of ["4 attempts", "3 attempts", "2 attempts", "1 attempt"]) {
    await submitCode(page, user.wrongCode());
    await expect(page.getByRole("alert")).toHaveText(`That code is not correct. ${left} left.`);
  }
  await submitCode(page, user.wrongCode());

  await expectOutcome(page, "You don't have access");
  await expect(page.getByText("Too many wrong codes. This sign-in was refused.")).toBeVisible();
  await expect(codeInput(page)).toHaveCount(0);
  await snap(page, "outcome-too-many-wrong-codes");
  expectFailureLink(await signInLink(page), portal, "REJECT", state);
  await expectOneVerifiedCallback(portal, token, "false");
  expect(await user.sessionStatus(token)).toMatchObject({ status: "REJECTED" });

  await page.getByRole("link", { name: "Sign in" }).click();
  const query = await arrivedAtPortal(page, portal);
  expect(query.get("error")).toBe("REJECT");
  expect(query.has("session_token")).toBe(false);
});

test("a user who presses Deny ends the sign-in as REJECT", async ({ page, service, portal, user, snap }) => {
  const token = await user.sessionToken();
  const state = newState();
  await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state }));

  await deny(page);

  await expectOutcome(page, "Sign-in denied");
  await snap(page, "outcome-denied");
  expectFailureLink(await signInLink(page), portal, "REJECT", state);
  await expectOneVerifiedCallback(portal, token, "false");
  await page.getByRole("link", { name: "Sign in" }).click();
  const query = await arrivedAtPortal(page, portal);
  expect([...query]).toEqual([
    ["error", "REJECT"],
    ["state", state],
  ]);
});

test("when the page's own request fails, its plain form post still does what the user pressed", async ({ page, service, portal, user }) => {
  const token = await user.sessionToken();
  await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state: newState() }));
  await page.route(
    (url) => url.pathname === "/start-authentication",
    (route) => (route.request().resourceType() === "fetch" ? route.abort("connectionreset") : route.continue()),
  );

  await deny(page);

  await expectOutcome(page, "Sign-in denied");
  await expectOneVerifiedCallback(portal, token, "false");
});

test.describe("with a 3-second session", () => {
  test.use({ sessionTtlSecs: 3 });

  test("a sign-in left alone ends as TIMEOUT: the portal is told within seconds and the page shows it expired", async ({ page, service, portal, user, snap }) => {
    const token = await user.sessionToken();
    const expiresAt = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp * 1000;
    const state = newState();
    await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state }));
    await expect(codeInput(page)).toBeVisible();

    const callback = await expectOneVerifiedCallback(portal, token, "false");
    expect(callback.at).toBeGreaterThanOrEqual(expiresAt - 1000);
    expect(callback.at).toBeLessThanOrEqual(expiresAt + 4000);

    // The page reloads itself when its countdown ends.
    await expectOutcome(page, "This sign-in has expired");
    await snap(page, "outcome-expired");
    expectFailureLink(await signInLink(page), portal, "TIMEOUT", state);
    expect(await user.sessionStatus(token)).toMatchObject({ status: "TIMEOUT" });
  });
});

test("a redirect URI the application did not register gets an error page that leads nowhere", async ({ page, service, portal, user, snap }) => {
  const token = await user.sessionToken();
  const foreignRequests = [];
  page.on("request", (request) => {
    if (new URL(request.url()).origin !== service.origin) foreignRequests.push(request.url());
  });
  const unregistered = [`${portal.origin}/elsewhere`, "https://evil.example/cb", `${portal.redirectUri}/`, `${portal.redirectUri}?next=/admin`];
  for (const [index, redirectUri] of unregistered.entries()) {
    for (const method of ["redirect", "popup"]) {
      const response = await page.goto(signinUrl(service, { method, sessionToken: token, redirectUri, state: newState() }));
      expect(response?.status()).toBe(400);
      await expectOutcome(page, "This sign-in link is not valid");
      await expect(page.getByText("redirect_uri is not registered for this application.")).toBeVisible();
      await expect(codeInput(page)).toHaveCount(0);
      expect(await page.content()).not.toContain(new URL(redirectUri).host + new URL(redirectUri).pathname);
      if (index === 0 && method === "redirect") await snap(page, "outcome-invalid-link");

      for (const element of await page.locator("a, button, input[type=submit]").all()) {
        await element.click();
        await page.waitForLoadState();
      }
      expect(new URL(page.url()).origin).toBe(service.origin);
    }
  }
  expect(foreignRequests).toEqual([]);
  expect(portal.arrivals).toEqual([]);
  expect(portal.strays).toEqual([]);
  expect(await user.sessionStatus(token)).toMatchObject({ status: "PENDING" });
});

test("a code accepted in one session is refused in the user's next session", async ({ page, service, portal, user, snap }) => {
  const first = await user.sessionToken();
  await page.goto(signinUrl(service, { sessionToken: first, redirectUri: portal.redirectUri }));
  const code = user.freshCode();
  await submitCode(page, code);
  await arrivedAtPortal(page, portal);
  user.accepted();

  const second = await user.sessionToken();
  await page.goto(signinUrl(service, { sessionToken: second, redirectUri: portal.redirectUri }));
  await submitCode(page, code);
  await expect(page.getByRole("alert")).toHaveText("That code was already used. Wait for the next code. 4 attempts left.");
  await snap(page, "outcome-replayed-code");
  expect(await user.sessionStatus(second)).toMatchObject({ status: "PENDING" });

  // The next time step's code is good.
  expect((await approve(page, portal, user)).get("session_token")).toBe(second);
  await expectOneVerifiedCallback(portal, second, "true");
});

test("an approved session reopened, or posted again from a page left open, is not approved twice", async ({ page, context, service, portal, user, snap }) => {
  const token = await user.sessionToken();
  const url = signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri });
  const stale = await openInTwoTabs(context, page, url);
  await approve(page, portal, user);
  const approved = await user.sessionStatus(token);

  // The page left open posts its form with a code that would be good.
  await submitCode(stale, user.freshCode());
  await expectOutcome(stale, "Already signed in");
  expect(new URL(stale.url()).origin).toBe(service.origin);

  await page.goto(url);
  await expectOutcome(page, "Already signed in");
  await expect(page.locator("form")).toHaveCount(0);
  await snap(page, "outcome-already-signed-in");
  expect(portal.arrivals).toHaveLength(1);
  await expectOneVerifiedCallback(portal, token, "true");
  expect(await user.sessionStatus(token)).toEqual(approved);
});

test("a rejected session reopened, or posted again from a page left open with a good code, stays rejected", async ({ page, context, service, portal, user, snap }) => {
  const token = await user.sessionToken();
  const state = newState();
  const url = signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state });
  const stale = await openInTwoTabs(context, page, url);
  await deny(page);
  await expectOutcome(page, "Sign-in denied");

  await submitCode(stale, user.freshCode());
  await expectOutcome(stale, "You don't have access");
  expectFailureLink(await signInLink(stale), portal, "REJECT", state);

  await page.goto(url);
  await expectOutcome(page, "You don't have access");
  await expect(page.locator("form")).toHaveCount(0);
  await snap(page, "outcome-reopened-after-reject");
  expectFailureLink(await signInLink(page), portal, "REJECT", state);
  expect(portal.arrivals).toEqual([]);
  await expectOneVerifiedCallback(portal, token, "false");
  expect(await user.sessionStatus(token)).toMatchObject({ status: "REJECTED" });
});

test.describe("with JavaScript off", () => {
  test.use({ javaScriptEnabled: false });

  test("the plain form posts still refuse a wrong code and sign in with the right one", async ({ page, service, portal, user, snap }) => {
    const token = await user.sessionToken();
    const state = newState();
    await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state }));

    await submitCode(page, user.wrongCode());
    await expect(page.getByRole("alert")).toHaveText("That code is not correct. 4 attempts left.");
    await snap(page, "outcome-wrong-code-without-javascript");

    const query = await approve(page, portal, user);
    expect([...query]).toEqual([
      ["session_token", token],
      ["state", state],
    ]);
    await expectOneVerifiedCallback(portal, token, "true");
  });
});
