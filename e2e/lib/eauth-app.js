// @ts-check
// The user's eAuthenticator app in the browser tests: the real `eauth` binary, with an
// accounts file of its own, registered for push approval with the test's service. What a
// genuine app never sends is signed with its stored key by lib/device.js.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { binary, cleanEnv } = require("./program");
const { stepAt } = require("./totp");

/** `cargo build --bin eauth`'s binary, or `$EAUTH_CLI`. */
const EAUTH = binary("eauth", "EAUTH_CLI");
const RUN_TIMEOUT_MS = 20_000;

/**
 * What a run of `eauth` came to.
 * @typedef {{ code: number | null, stdout: string, stderr: string }} Run
 */

class EauthApp {
  /** An app with no accounts yet, in a fresh directory (its HOME too). */
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "eauth-app-"));
    this.accounts = path.join(this.dir, "config", "eauth", "accounts.json");
    // Only its own accounts file: the shell's EAUTH_* and XDG_* must not reach it.
    this.env = cleanEnv(["EAUTH_", "XDG_"], { HOME: this.dir, EAUTH_ACCOUNTS: this.accounts });
  }

  /**
   * Starts `eauth ARGS` for a conversation: `waitFor` what it writes, `type` a line.
   * @param {string[]} args
   */
  start(args) {
    if (!fs.existsSync(EAUTH)) throw new Error(`${EAUTH} does not exist: run \`cargo build --bin eauth\` first`);
    const child = spawn(EAUTH, args, { env: this.env, stdio: ["pipe", "pipe", "pipe"] });
    return new Conversation(child, args);
  }

  /**
   * Runs `eauth ARGS` to its end.
   * @param {string[]} args
   * @returns {Promise<Run>}
   */
  run(args) {
    const conversation = this.start(args);
    conversation.child.stdin?.end();
    return conversation.exited;
  }

  /**
   * `eauth add URI --server ... --ca-cert ...` for `user`'s account at `app`, as the user
   * does after scanning the portal's QR code. The registration uses up the current code.
   * @param {{ url: string, dataDir: string }} service
   * @param {{ client_id: string }} app
   * @param {import("./service").User} user
   * @param {string} issuer the application's name
   */
  async register(service, app, user, issuer) {
    const query = new URLSearchParams({ secret: user.secret, issuer, client_id: app.client_id, email: user.email });
    const uri = `otpauth://totp/${encodeURIComponent(issuer)}:${encodeURIComponent(user.email)}?${query}`;
    const run = await this.run(["add", uri, "--server", service.url, "--ca-cert", path.join(service.dataDir, "tls", "cert.pem")]);
    if (run.code !== 0) throw new Error(`eauth add failed: ${JSON.stringify(run)}`);
    user.usedCodeOf(stepAt(Date.now() / 1000));
    return run;
  }

  /**
   * The registered device of the first account, as the accounts file keeps it: its id and
   * its key's base64url seed (for `Device.fromSeed` of lib/device.js).
   * @returns {{ id: string, key: string }}
   */
  device() {
    const file = JSON.parse(fs.readFileSync(this.accounts, "utf8"));
    const { id, key } = file.accounts[0].device;
    return { id, key };
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A running `eauth`: what it wrote so far, and a way to answer its questions. */
class Conversation {
  /**
   * @param {import("node:child_process").ChildProcessWithoutNullStreams} child
   * @param {string[]} args
   */
  constructor(child, args) {
    this.child = child;
    this.stdout = "";
    this.stderr = "";
    /** @type {Set<() => void>} */
    this.listeners = new Set();
    const heard = () => this.listeners.forEach((listener) => listener());
    child.stdout.setEncoding("utf8").on("data", (chunk) => ((this.stdout += chunk), heard()));
    child.stderr.setEncoding("utf8").on("data", (chunk) => ((this.stderr += chunk), heard()));
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    /** @type {Promise<Run>} */
    this.exited = new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code) => {
        clearTimeout(timer);
        heard();
        resolve({ code, stdout: this.stdout, stderr: this.stderr });
      });
    });
    this.args = args;
  }

  /**
   * Resolves once stdout and stderr together have matched `pattern` `times` times; rejects
   * if `eauth` exits first.
   * @param {RegExp} pattern
   */
  waitFor(pattern, times = 1) {
    const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`);
    const seen = () => (this.stdout + this.stderr).match(global)?.length ?? 0;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (seen() >= times) {
          this.listeners.delete(check);
          resolve(undefined);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.listeners.delete(check);
          reject(new Error(`eauth ${this.args.join(" ")} ended without writing ${pattern}: ${JSON.stringify({ stdout: this.stdout, stderr: this.stderr })}`));
        }
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Types `line` and Enter. */
  type(line) {
    this.child.stdin.write(`${line}\n`);
  }
}

module.exports = { EauthApp, EAUTH };
