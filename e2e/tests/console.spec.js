// @ts-check
// The Domain Console in a real browser (issue 4): an integrator registers, creates an
// application through the form and runs the API with the credentials the page shows, rotates
// the key, deactivates and activates; a user's device is removed (issue 5); and what protects
// accounts — another account's application is not found and its forms change nothing even
// with a valid token of one's own, forms without this session's token are refused, and a
// signed-out cookie opens nothing. The API calls come from node on 127.0.0.1, which each
// application's IP list allows.
"use strict";

const { test, expect } = require("../fixtures");
const { User } = require("../lib/service");
const { Device } = require("../lib/device");
const { ConsoleAccount, SESSION_COOKIE } = require("../lib/console");

const PORTAL = {
  ips: ["127.0.0.1", "::1"],
  callbackUrl: "https://portal.example.com/eauth/callback",
  redirectUris: ["https://portal.example.com/callback"],
};

// Integrators work on laptops.
test.use({ viewport: { width: 1280, height: 800 } });

/** The settings form's fields, as the browser would post them (less the form's token). */
function settingsOf(page) {
  return page.locator("form.app-form").evaluate((form) => {
    const fields = new URLSearchParams(/** @type {any} */ (new FormData(/** @type {HTMLFormElement} */ (form))));
    fields.delete("csrf");
    return fields.toString();
  });
}

/** What `session-token` answers for `user` with `apiKey`: `{status, body}`. */
function sessionToken(service, apiKey, user) {
  return service.api(apiKey, "session-token", { email: user.email, client_id: user.app.client_id });
}

/** Jane, signed up in `page`'s browser, with an application and an enrolled user. */
async function janeWithApplication(page, service) {
  const jane = new ConsoleAccount(page, service, "jane@example.com");
  await jane.register();
  const app = await jane.createApplication({ name: "Jane's Portal", ...PORTAL });
  const user = await User.enroll(service, app);
  return { jane, app, user };
}

test("an application created in the browser works with the key on the page, until rotated, deactivated or activated", async ({ page, service }) => {
  const jane = new ConsoleAccount(page, service, "jane@example.com");
  await jane.register();
  const app = await jane.createApplication({ name: "Jane's Portal", ...PORTAL });
  expect(app.client_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  expect(app.api_key).toMatch(/^eak_/);
  expect(app.callback_secret).toMatch(/^ecs_/);
  // With JavaScript, the copy buttons show.
  await expect(page.getByRole("button", { name: "Copy" }).first()).toBeVisible();

  // The guide's Steps 2 and 3 with the credentials read off the page.
  const user = await User.enroll(service, app);
  expect(await user.sessionToken()).toMatch(/^eyJ/);

  // Rotated in the browser, after its confirmation: the old key is refused at once.
  const newKey = await jane.rotateApiKey(app.client_id);
  expect(newKey).toMatch(/^eak_/);
  expect(newKey).not.toBe(app.api_key);
  const refused = await sessionToken(service, app.api_key, user);
  expect([refused.status, refused.body.code]).toEqual([401, "INVALID_API_KEY"]);
  user.app = { ...app, api_key: newKey };
  expect(await user.sessionToken()).toMatch(/^eyJ/);

  await jane.setActive(app.client_id, false);
  expect(await sessionToken(service, newKey, user)).toEqual({
    status: 403,
    body: { code: "INACTIVE", message: "client not active", data: null },
  });
  await jane.setActive(app.client_id, true);
  expect(await user.sessionToken()).toMatch(/^eyJ/);
});

test("a user's registered device is listed on the Users page and removed after a confirmation", async ({ page, service }) => {
  const { jane, app, user } = await janeWithApplication(page, service);
  const device = await Device.register(service, user, "Jane's user's phone");
  expect((await device.signins()).status).toBe(200);

  await jane.go(jane.appPath(app.client_id, "users"));
  const row = page.locator("tbody tr", { hasText: user.email });
  await expect(row.locator("td[data-label=Devices]")).toContainText(/^\s*Jane's user's phone registered \d{4}-\d\d-\d\d \d\d:\d\d:\d\d.UTC/);
  await row.getByRole("link", { name: `Remove Jane's user's phone of ${user.email}` }).click();

  await expect(page.getByRole("heading", { name: "Remove this device?" })).toBeVisible();
  await expect(page.getByText(`is the eAuthenticator app of ${user.email}`)).toBeVisible();
  // Cancel changes nothing.
  await page.getByRole("link", { name: "Cancel" }).click();
  await expect(page).toHaveURL(jane.url(jane.appPath(app.client_id, "users")));
  expect((await device.signins()).status).toBe(200);

  await row.getByRole("link", { name: /^Remove Jane's user's phone/ }).click();
  await page.getByRole("button", { name: "Remove the device" }).click();
  await expect(page.getByRole("status")).toHaveText(/The device was removed/);
  await expect(row).not.toContainText("Jane's user's phone");
  // The app is refused from now on; the user still signs in with a code.
  const gone = await device.signins();
  expect([gone.status, gone.body.code]).toEqual([401, "UNKNOWN_DEVICE"]);
  expect(await user.sessionToken()).toMatch(/^eyJ/);

  await jane.go(jane.appPath(app.client_id, "audit"));
  const entry = page.locator("tbody tr", { hasText: "Removed a user's device" });
  await expect(entry).toHaveCount(1);
  await expect(entry).toContainText(`Device “Jane's user's phone” of user ${user.email}`);
  await expect(entry).toContainText("127.0.0.1");
});

test("another account finds none of Jane's application pages, and its forms change nothing even with a valid token of its own", async ({ page, service, browser }) => {
  const { jane, app, user } = await janeWithApplication(page, service);
  const device = await Device.register(service, user, "Jane's user's phone");
  await jane.go(jane.appPath(app.client_id, "settings"));
  const settingsBefore = await settingsOf(page);

  // John, in a browser of his own, with an application of his own.
  const johnsContext = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const johnsPage = await johnsContext.newPage();
    const john = new ConsoleAccount(johnsPage, service, "john@example.com");
    await john.register();
    const johns = await john.createApplication({ name: "John's Portal", ...PORTAL });
    await expect(johnsPage.getByText("Jane's Portal")).toHaveCount(0);

    // Guessing Jane's addresses: "Not found", and nothing of hers on the page.
    for (const tab of ["", "users", "sign-ins", "callbacks", "integration", "settings", "keys", "rotate-api-key", "rotate-callback-secret", "delete", "audit", `devices/${device.id}/remove`]) {
      const response = await john.go(john.appPath(app.client_id, tab));
      expect(response.status(), tab).toBe(404);
      await expect(johnsPage.getByRole("heading", { name: "Not found" })).toBeVisible();
      await expect(johnsPage.locator("main")).not.toContainText("Jane's Portal");
    }

    // His own confirmation form, pointed at Jane's application: his token is valid, but the
    // application is not his.
    await john.go(john.appPath(johns.client_id, "rotate-api-key"));
    await johnsPage.locator("main form").evaluate((form, id) => {
      /** @type {HTMLFormElement} */ (form).action = `/console/apps/${id}/rotate-api-key`;
    }, app.client_id);
    await johnsPage.getByRole("button", { name: "Rotate the API key" }).click();
    await expect(johnsPage.getByRole("heading", { name: "Not found" })).toBeVisible();

    // Every other form of an application, posted with his valid token and Jane's client_id.
    await john.go("/console");
    const csrf = await john.csrf();
    const posts = {
      settings: { name: "Stolen", ips: "0.0.0.0/0", callback_url: "https://evil.example/cb", redirect_uris: "https://evil.example/r" },
      "rotate-callback-secret": {},
      activation: { active: "false" },
      delete: { name: "Jane's Portal" },
      "users/unlock": { email: user.email },
      [`devices/${device.id}/remove`]: {},
    };
    for (const [action, fields] of Object.entries(posts)) {
      const response = await johnsContext.request.post(john.url(john.appPath(app.client_id, action)), { form: { csrf, ...fields }, maxRedirects: 0 });
      expect(response.status(), action).toBe(404);
      expect(await response.text(), action).not.toContain("Jane's Portal");
    }
    // Jane's device id through John's own application: not his application's device.
    const crafted = await johnsContext.request.post(john.url(john.appPath(johns.client_id, `devices/${device.id}/remove`)), { form: { csrf }, maxRedirects: 0 });
    expect(crafted.status()).toBe(404);

    // John's audit log: he did nothing to anyone's application but create his own.
    await john.go("/console/audit");
    await expect(johnsPage.locator("main tbody tr")).toHaveText([/Created the application/, /Registered the account/]);
  } finally {
    await johnsContext.close();
  }

  // Nothing of Jane's changed: her key works (the application is active), her settings and
  // her user's device are as they were.
  expect(await user.sessionToken()).toMatch(/^eyJ/);
  expect((await device.signins()).status).toBe(200);
  await jane.go(jane.appPath(app.client_id, "settings"));
  expect(await settingsOf(page)).toBe(settingsBefore);
  await jane.go(jane.appPath(app.client_id, "audit"));
  await expect(page.locator("main tbody tr")).toHaveText([/Created the application/]);
});

test("forms without this session's token, or with a wrong one, are refused and change nothing", async ({ page, service }) => {
  const { jane, app, user } = await janeWithApplication(page, service);

  // The Deactivate button, its form's token taken out.
  await jane.go(jane.appPath(app.client_id, "keys"));
  await page.locator("form[action$='/activation'] input[name=csrf]").evaluate((input) => input.remove());
  await page.getByRole("button", { name: "Deactivate" }).click();
  await expect(page.getByRole("heading", { name: "Please reload the page" })).toBeVisible();

  // The key's rotation, with a token of the right shape that is not this session's.
  await jane.go(jane.appPath(app.client_id, "rotate-api-key"));
  await page.locator("main form input[name=csrf]").evaluate((input) => {
    /** @type {HTMLInputElement} */ (input).value = "0".repeat(64);
  });
  await page.getByRole("button", { name: "Rotate the API key" }).click();
  await expect(page.getByRole("heading", { name: "Please reload the page" })).toBeVisible();
  await expect(page.locator("code#api-key")).toHaveCount(0);

  // Posted from elsewhere with this browser's cookie but no token: a new application, a
  // deletion, a sign-out.
  const forms = {
    "/console/apps/new": { name: "Forged", ips: "0.0.0.0/0", callback_url: "https://evil.example/cb", redirect_uris: "https://evil.example/r" },
    [jane.appPath(app.client_id, "delete")]: { name: "Jane's Portal" },
    "/console/sign-out": {},
  };
  for (const [path, form] of Object.entries(forms)) {
    const response = await page.request.post(jane.url(path), { form, maxRedirects: 0 });
    expect(response.status(), path).toBe(403);
  }

  // The key works and the application is active; one application; still signed in; no audit
  // entry but the creation.
  expect(await user.sessionToken()).toMatch(/^eyJ/);
  await jane.go("/console");
  await expect(page.locator(".card")).toHaveCount(1);
  await expect(page.locator(".card .badge")).toHaveText("Active");
  await expect(page.locator(".topbar .who")).toHaveText(jane.email);
  await jane.go(jane.appPath(app.client_id, "audit"));
  await expect(page.locator("main tbody tr")).toHaveText([/Created the application/]);
});

test("after sign-out the old session cookie opens no page, in this browser or another", async ({ page, service, browser }) => {
  const { jane, app } = await janeWithApplication(page, service);
  const cookie = await jane.sessionCookie();
  expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: "Lax", path: "/" });

  await jane.go(jane.appPath(app.client_id, "keys"));
  await jane.signOut();
  // The browser forgot the cookie (a __Host- cookie is only replaced by a Secure one)...
  expect((await page.context().cookies()).map((c) => c.name)).not.toContain(SESSION_COOKIE);
  // ...and the server forgot the session.
  await jane.go(jane.appPath(app.client_id, "keys"));
  await expect(page).toHaveURL(/\/console\/sign-in\?next=/);

  // The copied cookie, put back by hand or into another browser, is dead too.
  const copy = { name: cookie.name, value: cookie.value, url: `${service.url}/`, secure: true, httpOnly: true, sameSite: /** @type {const} */ ("Lax") };
  for (const context of [page.context(), await browser.newContext({ ignoreHTTPSErrors: true })]) {
    await context.addCookies([copy]);
    const tab = context === page.context() ? page : await context.newPage();
    await tab.goto(jane.url(jane.appPath(app.client_id, "keys")));
    await expect(tab).toHaveURL(/\/console\/sign-in\?next=/);
    await expect(tab.getByRole("heading", { name: "Sign in to the Domain Console" })).toBeVisible();
    if (tab !== page) await context.close();
  }

  // Signing in again makes a new session, and the page asked for comes back.
  await page.getByLabel("Email").fill(jane.email);
  await page.getByLabel("Password").fill(jane.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(jane.url(jane.appPath(app.client_id, "keys")));
  expect((await jane.sessionCookie()).value).not.toBe(cookie.value);
});
