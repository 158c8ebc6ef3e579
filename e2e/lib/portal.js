// @ts-check
// The test portal: the integrator's side of the guide (Steps 4 and 5), on another origin than
// the service. It serves the redirect target, a page that signs in with a popup through the
// service's eauth.js, and the server-to-server callback receiver, which checks every
// callback's signature exactly as the integrator documentation says a portal must.
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");

/** How far a callback's timestamp may be from our clock (the documented replay window). */
const MAX_SKEW_SECS = 300;

/**
 * Checks a callback's query as a portal must: lower-case hex HMAC-SHA256 over
 * `"{timestamp}.{result}.{session_token}"`, keyed with the callback secret's UTF-8 bytes,
 * compared in constant time, with a timestamp within MAX_SKEW_SECS. Returns why it failed,
 * or null when it verified.
 * @param {URLSearchParams} query
 * @param {string | undefined} secret
 */
function callbackProblem(query, secret, nowSecs = Date.now() / 1000) {
  if (!secret) return "the portal does not know its callback secret yet";
  const result = query.get("result");
  const token = query.get("session_token");
  const timestamp = query.get("timestamp");
  const signature = query.get("signature");
  if (result !== "true" && result !== "false") return `result is ${JSON.stringify(result)}`;
  if (!token) return "no session_token";
  if (!timestamp || !/^\d+$/.test(timestamp)) return `timestamp is ${JSON.stringify(timestamp)}`;
  if (Math.abs(nowSecs - Number(timestamp)) > MAX_SKEW_SECS) return `timestamp ${timestamp} is too far from now`;
  if (!signature || !/^[0-9a-f]{64}$/.test(signature)) return "signature is not 64 lower-case hex digits";
  const expected = Buffer.from(signCallback(secret, timestamp, result, token), "hex");
  if (!crypto.timingSafeEqual(expected, Buffer.from(signature, "hex"))) return "signature does not match";
  return null;
}

/**
 * A callback's signature, as the service computes it: lower-case hex HMAC-SHA256 over
 * `"{timestamp}.{result}.{session_token}"`, keyed with the callback secret's UTF-8 bytes.
 * @param {string} secret
 * @param {string} timestamp
 * @param {string} result
 * @param {string} token
 */
function signCallback(secret, timestamp, result, token) {
  return crypto.createHmac("sha256", Buffer.from(secret, "utf8")).update(`${timestamp}.${result}.${token}`).digest("hex");
}

/** Text for an HTML page, escaped; JSON for a <script>, with `<` escaped so it cannot end it. */
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const scriptJson = (value) => JSON.stringify(value).replace(/</g, "\\u003c");

class Portal {
  constructor() {
    /** Every callback received: `{query, sessionToken, result, verified, problem, at}`. */
    this.callbacks = [];
    /** Every visit of the redirect target: `{query, at}`. */
    this.arrivals = [];
    /** Requests for paths the portal does not serve (e.g. an unregistered redirect URI). */
    this.strays = [];
    this.waiters = new Set();
    this.callbackSecret = undefined;
    this.serviceUrl = undefined;
    this.server = http.createServer((request, response) => this.handle(request, response));
  }

  /** Listens on 127.0.0.1, port 0; the portal is addressed as http://localhost:PORT. */
  async start() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => resolve(undefined)));
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("the portal has no port");
    this.origin = `http://localhost:${address.port}`;
    this.redirectUri = `${this.origin}/callback`;
    this.callbackUrl = `${this.origin}/eauth/callback`;
    return this;
  }

  /** Tells the portal what an integrator configures: the service's URL and the callback secret. */
  configure({ serviceUrl, callbackSecret }) {
    this.serviceUrl = serviceUrl;
    this.callbackSecret = callbackSecret;
  }

  async stop() {
    for (const waiter of this.waiters) waiter.reject(new Error("the portal stopped"));
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve(undefined)));
  }

  /** The URL of the portal page that signs in with a popup for `sessionToken`. */
  popupPageUrl(sessionToken) {
    return `${this.origin}/popup-signin?${new URLSearchParams({ session_token: sessionToken })}`;
  }

  /** The callbacks received for one session token. */
  callbacksFor(sessionToken) {
    return this.callbacks.filter((callback) => callback.sessionToken === sessionToken);
  }

  /**
   * Resolves with the first callback for `sessionToken` (at once if it already came), or
   * rejects after `timeoutMs`.
   */
  waitForCallback(sessionToken, timeoutMs = 10_000) {
    const [already] = this.callbacksFor(sessionToken);
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const waiter = {
        sessionToken,
        resolve: (callback) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(callback);
        },
        reject: (error) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(error);
        },
      };
      const timer = setTimeout(() => waiter.reject(new Error(`no callback for the session within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.add(waiter);
    });
  }

  handle(request, response) {
    const url = new URL(request.url || "/", this.origin);
    const at = Date.now();
    if (request.method === "GET" && url.pathname === "/eauth/callback") {
      const problem = callbackProblem(url.searchParams, this.callbackSecret);
      const callback = {
        query: url.searchParams,
        sessionToken: url.searchParams.get("session_token"),
        result: url.searchParams.get("result"),
        verified: problem === null,
        problem,
        at,
      };
      this.callbacks.push(callback);
      for (const waiter of [...this.waiters]) {
        if (waiter.sessionToken === callback.sessionToken) waiter.resolve(callback);
      }
      // A forged callback is refused, as a real portal would.
      response.writeHead(problem === null ? 200 : 401, { "Content-Type": "text/plain" });
      response.end(problem === null ? "ok" : `refused: ${problem}`);
    } else if (request.method === "GET" && url.pathname === "/callback") {
      this.arrivals.push({ query: url.searchParams, at });
      this.page(response, "Back at the portal", `<pre id="query">${escapeHtml(url.search)}</pre>`);
    } else if (request.method === "GET" && url.pathname === "/popup-signin") {
      this.popupPage(response, url.searchParams.get("session_token") || "");
    } else {
      this.strays.push({ method: request.method, url: url.href, at });
      response.writeHead(404, { "Content-Type": "text/plain" });
      response.end("not found");
    }
  }

  page(response, title, body) {
    response.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    response.end(`<!doctype html><html lang="en"><meta charset="utf-8"><title>${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1>${body}</html>`);
  }

  /**
   * A portal page that signs in with a popup, as the guide's Option 2 and eauth.js's own
   * comment show; it writes the outcome into #result for the test to read.
   */
  popupPage(response, sessionToken) {
    const options = { sessionToken, redirectUri: this.redirectUri };
    this.page(
      response,
      "Portal: sign in with a popup",
      `<button id="signin" type="button">Sign in with eAuthenticator</button>
<output id="result" data-status="pending">pending</output>
<script src="${escapeHtml(this.serviceUrl)}/sdk/eauth.js"></script>
<script>
  const options = ${scriptJson(options)};
  const result = document.getElementById("result");
  // Every message this page gets, for tests that must know one was handled.
  window.messagesSeen = 0;
  window.addEventListener("message", () => window.messagesSeen++);
  function show(outcome) {
    result.textContent = JSON.stringify(outcome);
    result.dataset.status = "done";
  }
  document.getElementById("signin").addEventListener("click", () => {
    result.dataset.status = "waiting";
    EAuth.signInWithPopup(options).then(
      (answer) => show({ ok: true, sessionToken: answer.sessionToken, state: answer.state }),
      (error) => show({ ok: false, code: error.code }),
    );
  });
</script>`,
    );
  }
}

module.exports = { Portal, callbackProblem, signCallback };
