// @ts-check
// An eAuthenticator app as docs/app-api.md describes it, written from that document alone: an
// Ed25519 key, registration with a current code, and requests signed over the canonical
// string. The browser tests use it to give a user a device the console then lists and removes.
"use strict";

const crypto = require("node:crypto");

const { requestJson } = require("./service");

class Device {
  /**
   * @param {{ url: string, ca: Buffer }} service eauthd (lib/service.js)
   * @param {string} name
   */
  constructor(service, name) {
    this.service = service;
    this.name = name;
    const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
    this.privateKey = privateKey;
    /** The raw 32-byte key in base64url without padding: exactly JWK's `x`. */
    this.publicKey = /** @type {string} */ (publicKey.export({ format: "jwk" }).x);
    /** @type {string | null} the id the service gave at registration */
    this.id = null;
  }

  /**
   * Registers a new device for `user` (a `User` of lib/service.js) with its current code, which
   * the service then counts as used; resolves with the device.
   * @param {{ url: string, ca: Buffer }} service
   * @param {import("./service").User} user
   * @param {string} name
   */
  static async register(service, user, name) {
    const device = new Device(service, name);
    const body = {
      client_id: user.app.client_id,
      email: user.email,
      public_key: device.publicKey,
      code: user.freshCode(),
      name,
    };
    const { status, body: answer } = await device.request("POST", "/app-api/v1/devices", body);
    if (status !== 201 || answer.code !== "SUCCESS") throw new Error(`registration refused: HTTP ${status} ${JSON.stringify(answer)}`);
    user.accepted();
    device.id = answer.data.device_id;
    return device;
  }

  /** `GET /app-api/v1/signins`: resolves with `{status, body}`, refused or not. */
  signins() {
    return this.request("GET", "/app-api/v1/signins");
  }

  /**
   * A request signed as docs/app-api.md, "Signing requests", says; resolves with `{status, body}`.
   * @param {string} method
   * @param {string} pathAndQuery
   * @param {object} [json]
   */
  request(method, pathAndQuery, json) {
    const body = json === undefined ? "" : JSON.stringify(json);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = crypto.randomBytes(16).toString("base64url");
    const canonical = [
      "eauth-app-v1",
      method,
      pathAndQuery,
      timestamp,
      nonce,
      this.id ?? "",
      crypto.createHash("sha256").update(body).digest("hex"),
    ].join("\n");
    const signature = crypto.sign(null, Buffer.from(canonical), this.privateKey).toString("base64url");
    /** @type {Record<string, string | number>} */
    const headers = {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(body),
      "X-EAuth-Timestamp": timestamp,
      "X-EAuth-Nonce": nonce,
      "X-EAuth-Signature": signature,
    };
    if (this.id) headers["X-EAuth-Device"] = this.id;
    return requestJson(`${this.service.url}${pathAndQuery}`, { method, ca: this.service.ca, headers, payload: body });
  }
}

module.exports = { Device };
