// @ts-check
// Push approval with number matching (README, "Push approval"), end to end: the sign-in page
// in Chromium shows a number, the user types it into the real `eauth` (an accounts file of its
// own, registered for push approval with `eauth add --server`), and the page goes on by
// itself; the portal's backend hears every ending in a signed callback.
"use strict";

const { test, expect, APP_NAME } = require("../fixtures");
const { EauthApp } = require("../lib/eauth-app");
const { Device } = require("../lib/device");
const { User } = require("../lib/service");
const { signinUrl, codeInput, submitCode, expectOutcome, signInLink, arrivedAtPortal, expectFailureLink, expectOneVerifiedCallback, openPopup, portalResult } = require("../lib/signin-page");

const STATE = "push-state";
/** What `eauth approve` asks when it waits for the user. */
const PROMPT = /Number shown in the browser: /;

/** The two-digit number the page shows. */
async function shownNumber(page) {
  const number = page.locator(".push-number");
  await expect(number).toHaveText(/^\d\d$/);
  return Number(await number.textContent());
}

/** A number that is not the one shown. */
const otherThan = (number) => (number === 99 ? 10 : number + 1);

/** Opens the sign-in page by redirect; resolves with the number it shows. */
async function openSignin(page, service, portal, token) {
  await page.goto(signinUrl(service, { sessionToken: token, redirectUri: portal.redirectUri, state: STATE }));
  await expect(page.getByText("Approve in your eAuthenticator app")).toBeVisible();
  return shownNumber(page);
}

/** The page's failure outcome, arrived at by itself, and its link back to the portal. */
async function expectRefusedByItself(page, portal, heading, error) {
  await expectOutcome(page, heading);
  expectFailureLink(await signInLink(page), portal, error, STATE);
  expect(portal.arrivals).toEqual([]);
}

test("the user types the number the page shows into eauth approve: the page goes on to the portal by itself, which already has result=true", async ({ page, service, portal, user, eauthApp, snap }) => {
  const token = await user.sessionToken();
  const number = await openSignin(page, service, portal, token);
  await snap(page, "push-number");

  const approving = eauthApp.start(["approve"]);
  await approving.waitFor(PROMPT);
  // What the user checks before typing: the application, the account, the browser's address.
  expect(approving.stdout).toContain(`  ${APP_NAME}  ${APP_NAME}:${user.email}  from 127.0.0.1  at `);
  approving.type(String(number));
  const run = await approving.exited;
  expect(run, run.stderr).toMatchObject({ code: 0 });
  expect(run.stdout).toMatch(new RegExp(`approved ${APP_NAME}\n$`));

  const query = await arrivedAtPortal(page, portal);
  expect([...query]).toEqual([
    ["session_token", token],
    ["state", STATE],
  ]);
  const callback = await expectOneVerifiedCallback(portal, token, "true");
  expect(callback.at).toBeLessThanOrEqual(portal.arrivals[0].at + 1000);
  expect(await user.sessionStatus(token)).toMatchObject({ status: "APPROVED" });
});

test("in a popup, an approval in eauth posts the session token and state to the portal page and the popup closes", async ({ page, service, portal, user, eauthApp }) => {
  const token = await user.sessionToken();
  const popup = await openPopup(page, portal, token, service);
  const state = new URL(popup.url()).searchParams.get("state");
  const number = await shownNumber(popup);

  const closed = popup.waitForEvent("close");
  const run = await eauthApp.run(["approve", "--number", String(number)]);
  expect(run, run.stderr).toMatchObject({ code: 0 });
  await closed;

  expect(await portalResult(page)).toEqual({ ok: true, sessionToken: token, state });
  await expectOneVerifiedCallback(portal, token, "true");
});

test("eauth deny, or three wrong numbers typed into eauth, end the sign-in as REJECT: the page shows it by itself and the portal gets result=false", async ({ page, service, portal, user, eauthApp }) => {
  const denied = await user.sessionToken();
  await openSignin(page, service, portal, denied);
  const run = await eauthApp.run(["deny"]);
  expect(run, run.stderr).toMatchObject({ code: 0 });
  expect(run.stdout).toMatch(new RegExp(`denied ${APP_NAME}\n$`));
  await expectRefusedByItself(page, portal, "You don't have access", "REJECT");
  await expect(page.getByText("This sign-in was refused.")).toBeVisible();
  await expectOneVerifiedCallback(portal, denied, "false");
  expect(await user.sessionStatus(denied)).toMatchObject({ status: "REJECTED" });

  const token = await user.sessionToken();
  const number = await openSignin(page, service, portal, token);
  const wrong = String(otherThan(number));
  // Typed interactively, eauth asks again while the sign-in takes numbers.
  const approving = eauthApp.start(["approve"]);
  for (const [asked, left] of [
    [1, "2 attempts left"],
    [2, "1 attempt left"],
  ]) {
    await approving.waitFor(PROMPT, asked);
    approving.type(wrong);
    await approving.waitFor(new RegExp(`not the number shown in the browser \\(${left}\\)`));
  }
  await approving.waitFor(PROMPT, 3);
  approving.type(wrong);
  const refused = await approving.exited;
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("for the third time: the sign-in was refused");
  await expectRefusedByItself(page, portal, "You don't have access", "REJECT");
  await expectOneVerifiedCallback(portal, token, "false");
  // The right number is too late now.
  const late = await eauthApp.run(["approve", "--number", String(number)]);
  expect(late).toMatchObject({ code: 2, stderr: expect.stringContaining("no sign-in is waiting") });
  expect(await user.sessionStatus(token)).toMatchObject({ status: "REJECTED" });
});

test("while the push waits, the code field still signs in; the number typed into eauth afterwards changes nothing", async ({ page, service, portal, user, eauthApp }) => {
  const token = await user.sessionToken();
  const number = await openSignin(page, service, portal, token);
  await expect(codeInput(page)).toBeVisible();
  const approving = eauthApp.start(["approve"]);
  await approving.waitFor(PROMPT);

  await submitCode(page, user.freshCode());
  await arrivedAtPortal(page, portal);
  user.accepted();

  approving.type(String(number));
  const run = await approving.exited;
  expect(run.code).toBe(1);
  expect(run.stderr).toContain("this sign-in is over (SIGNIN_FINISHED)");
  await expectOneVerifiedCallback(portal, token, "true");
  expect(portal.arrivals).toHaveLength(1);
});

test("a request signed with another device's key is refused and leaves the sign-in alone; the user's own eauth then approves it", async ({ page, service, app, portal, user, eauthApp }) => {
  // Another user of the same portal, with an eauth of their own.
  const other = await User.enroll(service, app);
  const othersApp = new EauthApp();
  try {
    await othersApp.register(service, app, other, APP_NAME);
    const token = await user.sessionToken();
    const number = await openSignin(page, service, portal, token);
    const signin = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).jti;
    const approve = `/app-api/v1/signins/${signin}/approve`;
    const mine = eauthApp.device();
    const stored = othersApp.device();
    const theirs = Device.fromSeed(service, stored);

    // This test's own signing is right: the other device's request as itself is answered.
    const listed = await theirs.signins();
    expect(listed).toMatchObject({ status: 200, body: { code: "SUCCESS", data: { signins: [] } } });
    // The user's device named, with the right number, but signed with the other device's key.
    const forger = Device.fromSeed(service, { id: mine.id, key: stored.key });
    const forged = await forger.request("POST", approve, { number });
    expect(forged).toMatchObject({ status: 401, body: { code: "BAD_SIGNATURE" } });
    // The other device as itself: another user's sign-in is not one it can see.
    const foreign = await theirs.request("POST", approve, { number });
    expect(foreign).toMatchObject({ status: 404, body: { code: "NOT_FOUND" } });

    expect(await user.sessionStatus(token)).toMatchObject({ status: "PENDING" });
    await expect(page.locator(".push-number")).toHaveText(String(number));
    expect(portal.callbacks).toEqual([]);
    const run = await eauthApp.run(["approve", "--number", String(number)]);
    expect(run, run.stderr).toMatchObject({ code: 0 });
    expect((await arrivedAtPortal(page, portal)).get("session_token")).toBe(token);
    await expectOneVerifiedCallback(portal, token, "true");
  } finally {
    othersApp.remove();
  }
});

test.describe("with a 3-second session", () => {
  test.use({ sessionTtlSecs: 3 });

  test("a number typed into eauth after the sign-in expired is refused: the sign-in ends as TIMEOUT", async ({ page, service, portal, user, eauthApp }) => {
    const token = await user.sessionToken();
    const number = await openSignin(page, service, portal, token);
    const approving = eauthApp.start(["approve"]);
    await approving.waitFor(PROMPT);

    // The user is slow: the sign-in's lifetime ends, and the portal is told, before they type.
    await expectOneVerifiedCallback(portal, token, "false");
    approving.type(String(number));
    const run = await approving.exited;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("this sign-in is over (SIGNIN_FINISHED)");

    await expectRefusedByItself(page, portal, "This sign-in has expired", "TIMEOUT");
    expect(await user.sessionStatus(token)).toMatchObject({ status: "TIMEOUT" });
    expect(portal.callbacksFor(token)).toHaveLength(1);
  });
});
