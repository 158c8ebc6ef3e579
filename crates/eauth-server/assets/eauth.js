/*
 * eAuthenticator's helper for a portal's front end: sign in with a popup.
 *
 *   <script src="https://YOUR-EAUTH-HOST/sdk/eauth.js"></script>
 *   <script>
 *     // sessionToken comes from your backend, which got it from POST /authen-api/api/v1/session-token.
 *     EAuth.signInWithPopup({ sessionToken, redirectUri: "https://portal.example.com/callback" })
 *       .then(function (result) {
 *         // result.sessionToken: ask your backend whether it received a verified callback for it.
 *       })
 *       .catch(function (error) {
 *         // error.code: "REJECT", "TIMEOUT", "INTERNAL_SERVER_ERROR", "POPUP_BLOCKED" or "POPUP_CLOSED".
 *         window.location.href = "/sign-in";
 *       });
 *   </script>
 *
 * It does what the integration guide asks of every portal: a random `state` kept in
 * sessionStorage, messages accepted only from this service's origin and from the popup it
 * opened, and `state` compared before anything is believed. The session token it returns is
 * not proof of anything by itself: your backend decides on the signed callback it received.
 */
(function (global) {
  "use strict";

  // The service is wherever this script was loaded from.
  var script = document.currentScript;
  var SERVICE_ORIGIN = script ? new URL(script.src).origin : global.location.origin;
  var STATE_KEY = "oauth_state";

  function EAuthError(code, message) {
    var error = new Error(message);
    error.name = "EAuthError";
    error.code = code;
    return error;
  }

  function randomState() {
    var bytes = new Uint8Array(32);
    global.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  /** The URL of the sign-in page. `method` is "redirect" or "popup". */
  function authenticationUrl(options) {
    var url = new URL("/start-authentication", SERVICE_ORIGIN);
    url.searchParams.set("signin_method", options.method || "redirect");
    url.searchParams.set("session_token", options.sessionToken);
    if (options.redirectUri) url.searchParams.set("redirect_uri", options.redirectUri);
    if (options.state) url.searchParams.set("state", options.state);
    return url.toString();
  }

  /**
   * Opens the sign-in page in a popup; resolves with {sessionToken, state} when the user has
   * passed the second factor, rejects with an EAuthError otherwise.
   */
  function signInWithPopup(options) {
    return new Promise(function (resolve, reject) {
      var state = randomState();
      global.sessionStorage.setItem(STATE_KEY, state);
      var url = authenticationUrl({
        method: "popup",
        sessionToken: options.sessionToken,
        redirectUri: options.redirectUri,
        state: state,
      });
      var popup = global.open(url, "_blank", "width=500,height=600");
      if (!popup) {
        reject(EAuthError("POPUP_BLOCKED", "Popup blocked. Please allow pop-ups and try again."));
        return;
      }
      var settled = false;
      function finish() {
        settled = true;
        global.removeEventListener("message", onMessage, false);
        clearInterval(closedWatch);
        global.sessionStorage.removeItem(STATE_KEY);
      }
      function onMessage(event) {
        if (event.origin !== SERVICE_ORIGIN || event.source !== popup) return;
        var data = event.data || {};
        if (data.state !== global.sessionStorage.getItem(STATE_KEY)) {
          // Not an answer to this request: possibly forged; keep waiting for the real one.
          console.error("eAuthenticator: ignoring a message with the wrong state");
          return;
        }
        finish();
        if (data.session_token && !data.error) {
          resolve({ sessionToken: data.session_token, state: data.state });
        } else {
          reject(EAuthError(data.error || "REJECT", "Authentication failed: " + (data.error || "REJECT")));
        }
      }
      global.addEventListener("message", onMessage, false);
      // A closed popup sends nothing; the only way to notice is to look.
      var closedWatch = setInterval(function () {
        if (popup.closed && !settled) {
          // A message posted just before closing is delivered first; give it that turn.
          setTimeout(function () {
            if (settled) return;
            finish();
            reject(EAuthError("POPUP_CLOSED", "The sign-in window was closed."));
          }, 50);
          clearInterval(closedWatch);
        }
      }, 500);
    });
  }

  global.EAuth = { signInWithPopup: signInWithPopup, authenticationUrl: authenticationUrl, origin: SERVICE_ORIGIN };
})(window);
