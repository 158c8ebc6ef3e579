// The popup sign-in: eauth.js opens eAuthenticator's page, checks the message's origin and
// state, and gives back the session token; the portal's backend then decides, from the signed
// callback it received, whether the sign-in is approved.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("popup-signin");
  if (!box) return;
  var button = document.getElementById("open-popup");
  var error = document.getElementById("popup-error");
  button.addEventListener("click", function () {
    if (!window.EAuth) {
      // eauth.js did not load: the service is down, or (with a self-signed certificate) this
      // browser has not accepted its certificate yet.
      error.textContent = "eAuthenticator cannot be reached right now. Sign in again in a moment.";
      return;
    }
    button.disabled = true;
    window.EAuth.signInWithPopup({
      sessionToken: box.getAttribute("data-session-token"),
      redirectUri: box.getAttribute("data-redirect-uri"),
    })
      .then(function (result) {
        var form = document.getElementById("finish");
        form.querySelector("[name=session_token]").value = result.sessionToken;
        form.submit();
      })
      .catch(function (failure) {
        if (failure.code === "POPUP_BLOCKED" || failure.code === "POPUP_CLOSED") {
          error.textContent = failure.message;
          button.disabled = false;
          return;
        }
        window.location.href = "/sign-in?error=" + encodeURIComponent(failure.code || "REJECT");
      });
  });
  // Disabled in the page until now: a click before the scripts ran (eauth.js still loading
  // from the service) would have done nothing at all.
  button.disabled = false;
});
