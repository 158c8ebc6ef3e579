// @ts-check
// One `eauthd` per test: its own data directory, a free port, an application registered with
// `eauthd admin`, and a user enrolled through the public API, exactly as an integrator would.
"use strict";

const { execFile } = require("node:child_process");
const fs = require("node:fs");
const https = require("node:https");
const os = require("node:os");
const path = require("node:path");
const { promisify } = require("node:util");
const crypto = require("node:crypto");

const { randomSecret, codeForStep, stepAt } = require("./totp");
const { REPO_ROOT, binary, cleanEnv, startProgram } = require("./program");

/** `cargo build --bin eauthd`'s binary, or `$EAUTHD`. */
const EAUTHD = binary("eauthd", "EAUTHD");

/**
 * Starts eauthd and waits for its start-up line. `logPath` receives its stderr.
 * @param {{ logPath: string, sessionTtlSecs?: number }} options
 */
async function startService({ logPath, sessionTtlSecs }) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "eauth-e2e-"));
  // Ours only: an `EAUTH_*` variable of the shell (a database URL, a listen address) must not
  // leak into a test's service.
  const env = cleanEnv(["EAUTH_"], {
    EAUTH_DATA_DIR: dataDir,
    EAUTH_LISTEN: "127.0.0.1:0",
    EAUTH_LOG: "info",
    // The tests' portals listen on loopback.
    EAUTH_PRIVATE_CALLBACKS: "true",
    ...(sessionTtlSecs ? { EAUTH_SESSION_TTL_SECS: String(sessionTtlSecs) } : {}),
  });
  try {
    const program = await startProgram({ file: EAUTHD, env, logPath, ready: /^eauthd serving (https:\/\/\S+) / });
    return new Service({ url: program.match[1], dataDir, env, program });
  } catch (error) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

class Service {
  constructor({ url, dataDir, env, program }) {
    /** e.g. `https://127.0.0.1:41234` */
    this.url = url;
    this.origin = new URL(url).origin;
    this.dataDir = dataDir;
    this.env = env;
    this.program = program;
    /** The self-signed certificate, so that our own API calls verify TLS properly. */
    this.ca = fs.readFileSync(path.join(dataDir, "tls", "cert.pem"));
  }

  /** `eauthd admin ARGS` against this service's data directory; resolves with stdout. */
  async admin(args) {
    const { stdout } = await promisify(execFile)(EAUTHD, ["admin", ...args], { env: this.env });
    return stdout;
  }

  /**
   * Registers an application; resolves with `{client_id, api_key, callback_secret}`.
   * @param {{ name: string, callbackUrl: string, redirectUris: string[] }} app
   */
  async createApplication({ name, callbackUrl, redirectUris }) {
    const args = ["create-application", "--name", name, "--ip", "127.0.0.1", "--ip", "::1", "--callback-url", callbackUrl];
    for (const uri of redirectUris) args.push("--redirect-uri", uri);
    return JSON.parse(await this.admin([...args, "--json"]));
  }

  /** POSTs JSON to the API over verified TLS; resolves with `{status, body}`. */
  api(apiKey, endpoint, body) {
    return this.request("POST", `/authen-api/api/v1/${endpoint}`, { "X-API-Key": apiKey }, JSON.stringify(body));
  }

  /**
   * Sends `method path` with a JSON `payload` and `headers` over verified TLS. The answer must
   * be JSON (every answer of the service's APIs is, errors included); resolves with
   * `{status, body}` whatever the status. The tests' one HTTPS client: the API and the app API
   * (lib/device.js) go through it.
   * @param {string} method
   * @param {string} pathAndQuery
   * @param {Record<string, string>} headers
   * @param {string} payload
   * @returns {Promise<{ status: number | undefined, body: any }>}
   */
  request(method, pathAndQuery, headers, payload) {
    return new Promise((resolve, reject) => {
      const request = https.request(
        `${this.url}${pathAndQuery}`,
        {
          method,
          ca: this.ca,
          headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload), ...headers },
        },
        (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk) => (text += chunk));
          response.on("end", () => {
            try {
              resolve({ status: response.statusCode, body: JSON.parse(text) });
            } catch (error) {
              reject(new Error(`${method} ${pathAndQuery} answered ${response.statusCode} with non-JSON: ${text}`));
            }
          });
        },
      );
      request.on("error", reject);
      request.end(payload);
    });
  }

  /** Like `api`, but insists on `SUCCESS` and resolves with `data`. */
  async apiOk(apiKey, endpoint, body) {
    const { status, body: envelope } = await this.api(apiKey, endpoint, body);
    if (status !== 200 || envelope.code !== "SUCCESS") {
      throw new Error(`${endpoint} failed: HTTP ${status} ${JSON.stringify(envelope)}`);
    }
    return envelope.data;
  }

  /** SIGTERM, then SIGKILL if it does not stop in time; removes the data directory. */
  async stop() {
    await this.program.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * A user enrolled with an application: holds the TOTP secret, as the user's authenticator app
 * would, and hands out codes the service has not yet seen accepted.
 */
class User {
  constructor({ service, app, email, secret }) {
    this.service = service;
    this.app = app;
    this.email = email;
    this.secret = secret;
    /** The last time step whose code this user got accepted (the service refuses it again). */
    this.lastUsedStep = -1;
  }

  /** Enrolls a new user (a random email unless given) with a random 160-bit secret through `mfa/toggle`. */
  static async enroll(service, app, email = `user-${crypto.randomBytes(4).toString("hex")}@example.com`) {
    const user = new User({ service, app, email, secret: randomSecret() });
    await service.apiOk(app.api_key, "mfa/toggle", {
      email: user.email,
      client_id: app.client_id,
      secret: user.secret,
      action: "ENABLE",
      type: "TOTP",
      algorithm: "SHA1",
      digits: 6,
      period: 30,
    });
    return user;
  }

  /** A new session token for this user, as the portal's backend gets one after the password. */
  async sessionToken() {
    const data = await this.service.apiOk(this.app.api_key, "session-token", { email: this.email, client_id: this.app.client_id });
    return data.session_token;
  }

  /** The session's status as the service reports it (`PENDING`, `APPROVED`, `REJECTED`, ...). */
  async sessionStatus(token) {
    return this.service.apiOk(this.app.api_key, "session-result", { client_id: this.app.client_id, session_token: token });
  }

  /**
   * A code the service will accept now: the current step's, or the next step's (the service
   * allows one step of skew) if the current one was already used. Call `accepted(code)` once
   * the service took it. Throws if both were used: a test should not need three in a minute.
   */
  freshCode() {
    const now = stepAt(Date.now() / 1000);
    const step = Math.max(now, this.lastUsedStep + 1);
    if (step > now + 1) throw new Error("no fresh code in the window: the test used too many");
    this.pendingStep = step;
    return codeForStep(this.secret, step);
  }

  /** Records that the last `freshCode()` was accepted, so that the next one is later. */
  accepted() {
    this.lastUsedStep = Math.max(this.lastUsedStep, this.pendingStep);
  }

  /** Records that the code of `step` was used elsewhere (e.g. to register a device). */
  usedCodeOf(step) {
    this.lastUsedStep = Math.max(this.lastUsedStep, step);
  }

  /** A 6-digit code that no step near now produces: certainly wrong. */
  wrongCode() {
    const now = stepAt(Date.now() / 1000);
    const near = new Set([-2, -1, 0, 1, 2].map((d) => codeForStep(this.secret, now + d)));
    let candidate = crypto.randomInt(0, 1_000_000);
    while (near.has(String(candidate).padStart(6, "0"))) candidate = (candidate + 1) % 1_000_000;
    return String(candidate).padStart(6, "0");
  }
}

module.exports = { startService, User, REPO_ROOT, EAUTHD };
