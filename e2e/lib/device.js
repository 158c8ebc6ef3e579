// @ts-check
// An eAuthenticator app as docs/app-api.md describes it, written from that document alone: an
// Ed25519 key, registration with a current code, and requests signed over the canonical
// string (with node's crypto, not the service's Rust code, so that the two cannot share a
// bug). The tests' one app API signer: the console's tests register devices with it for the
// console to list and remove, and the push tests sign with the key the real `eauth` stored
// (lib/eauth-app.js) what a genuine app never sends.
"use strict";

const crypto = require("node:crypto");

/** Ed25519's PKCS #8 prefix for a raw 32-byte seed (RFC 8410), to load eauth's stored key. */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** @typedef {Awaited<ReturnType<typeof import("./service").startService>>} Service eauthd (lib/service.js) */

class Device {
  /**
   * A device of `service` that signs with `privateKey` (a new key unless given).
   * @param {Service} service
   * @param {crypto.KeyObject} [privateKey]
   */
  constructor(service, privateKey = crypto.generateKeyPairSync("ed25519").privateKey) {
    this.service = service;
    this.privateKey = privateKey;
    /** The raw 32-byte key in base64url without padding: exactly JWK's `x`. */
    this.publicKey = /** @type {string} */ (crypto.createPublicKey(privateKey).export({ format: "jwk" }).x);
    /** @type {string | null} the id the service gave at registration */
    this.id = null;
  }

  /**
   * A device registered elsewhere, e.g. by `eauth add --server`: its id, and its key as eauth's
   * accounts file keeps it (the base64url Ed25519 seed). Pairing one device's id with another's
   * key makes a forged request.
   * @param {Service} service
   * @param {{ id: string, key: string }} stored
   */
  static fromSeed(service, { id, key }) {
    const privateKey = crypto.createPrivateKey({
      key: Buffer.concat([ED25519_PKCS8_PREFIX, Buffer.from(key, "base64url")]),
      format: "der",
      type: "pkcs8",
    });
    const device = new Device(service, privateKey);
    device.id = id;
    return device;
  }

  /**
   * Registers a new device named `name` for `user` (a `User` of lib/service.js) with its
   * current code, which the service then counts as used; resolves with the device.
   * @param {Service} service
   * @param {import("./service").User} user
   * @param {string} name
   */
  static async register(service, user, name) {
    const device = new Device(service);
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
    /** @type {Record<string, string>} */
    const headers = { "X-EAuth-Timestamp": timestamp, "X-EAuth-Nonce": nonce, "X-EAuth-Signature": signature };
    if (this.id) headers["X-EAuth-Device"] = this.id;
    return this.service.request(method, pathAndQuery, headers, body);
  }
}

module.exports = { Device };
