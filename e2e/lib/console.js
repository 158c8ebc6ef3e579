// @ts-check
// The Domain Console as an integrator uses it in the browser: registering, signing in and out,
// creating an application through its form and reading the credentials off the page, and
// acting on an application's pages — each found as a person finds it, by its label or name.
"use strict";

const { expect } = require("@playwright/test");

const PASSWORD = "correct horse battery staple";

/** The console's session cookie (README, "How accounts are protected"). */
const SESSION_COOKIE = "__Host-eauth-console";

class ConsoleAccount {
  /**
   * @param {import("@playwright/test").Page} page the browser tab this account uses
   * @param {{ url: string }} service eauthd (lib/service.js)
   * @param {string} email
   */
  constructor(page, service, email) {
    this.page = page;
    this.service = service;
    this.email = email;
    this.password = PASSWORD;
  }

  /** `path` on the service. */
  url(path) {
    return `${this.service.url}${path}`;
  }

  /** An application's page: `tab` is "" (the overview), "users", "keys", ... */
  appPath(clientId, tab = "") {
    return tab ? `/console/apps/${clientId}/${tab}` : `/console/apps/${clientId}`;
  }

  /** Opens `path`; resolves with the main document's response. */
  async go(path) {
    const response = await this.page.goto(this.url(path));
    if (!response) throw new Error(`no response for ${path}`);
    return response;
  }

  /** Creates the account through the register form; the console signs it in at once. */
  async register() {
    await this.go("/console/register");
    await this.page.getByLabel("Email").fill(this.email);
    await this.page.getByLabel("Password").fill(this.password);
    await this.page.getByRole("button", { name: "Create account" }).click();
    await this.page.waitForURL(this.url("/console"));
    await expect(this.page.locator(".topbar .who")).toHaveText(this.email);
  }

  /** Presses "Sign out" in the top bar. */
  async signOut() {
    await this.page.getByRole("button", { name: "Sign out" }).click();
    await this.page.waitForURL(/\/console\/sign-in$/);
  }

  /** The session cookie the browser holds now. */
  async sessionCookie() {
    const cookies = await this.page.context().cookies(this.service.url);
    const cookie = cookies.find((c) => c.name === SESSION_COOKIE);
    if (!cookie) throw new Error("no console session cookie");
    return cookie;
  }

  /** The anti-forgery token of the forms on the page now open. */
  csrf() {
    return this.page.locator("input[name=csrf]").first().inputValue();
  }

  /**
   * "Create Application" through the form; resolves with what the next page shows once:
   * `{client_id, api_key, callback_secret}`, shaped as lib/service.js's applications are.
   * @param {{ name: string, ips: string[], callbackUrl: string, redirectUris: string[] }} app
   */
  async createApplication({ name, ips, callbackUrl, redirectUris }) {
    await this.go("/console");
    await this.page.getByRole("link", { name: "Create Application" }).first().click();
    await this.page.getByLabel("Application name").fill(name);
    await this.page.getByLabel("Server IP addresses").fill(ips.join("\n"));
    await this.page.getByLabel("Callback URL").fill(callbackUrl);
    await this.page.getByLabel("Redirect URIs").fill(redirectUris.join("\n"));
    await this.page.getByRole("button", { name: "Create Application" }).click();
    await expect(this.page.getByRole("heading", { name: "Application created" })).toBeVisible();
    return this.shownOnce();
  }

  /** The credentials on a page that shows them once (after creation or a rotation). */
  async shownOnce() {
    const text = async (id) => {
      const code = this.page.locator(`code#${id}`);
      return (await code.count()) ? (await code.textContent())?.trim() ?? "" : "";
    };
    return { client_id: await text("client-id"), api_key: await text("api-key"), callback_secret: await text("callback-secret") };
  }

  /** Rotates the API key on the Keys page, through its confirmation; resolves with the new key. */
  async rotateApiKey(clientId) {
    await this.go(this.appPath(clientId, "keys"));
    await this.page.getByRole("link", { name: "Rotate the API key…" }).click();
    await expect(this.page.getByRole("heading", { name: "Rotate the API key?" })).toBeVisible();
    await this.page.getByRole("button", { name: "Rotate the API key" }).click();
    await expect(this.page.getByRole("heading", { name: "New API key" })).toBeVisible();
    return (await this.shownOnce()).api_key;
  }

  /** Presses Deactivate or Activate on the Keys page and waits for the status to show it. */
  async setActive(clientId, active) {
    await this.go(this.appPath(clientId, "keys"));
    await this.page.getByRole("button", { name: active ? "Activate" : "Deactivate" }).click();
    await expect(this.page.locator(".app-head .badge")).toHaveText(active ? "Active" : "Inactive");
  }
}

module.exports = { ConsoleAccount, SESSION_COOKIE };
