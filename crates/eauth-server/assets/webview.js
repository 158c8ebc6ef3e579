// The sign-in page's enhancements. The page works without them (plain form posts); with
// them it counts down, submits without a full reload, notices an approval or denial made on
// the user's device and, in a popup, reports the outcome to the portal with postMessage to
// the portal's own origin (never "*").
"use strict";

(function () {
  function formatRemaining(seconds) {
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function startCountdown() {
    var el = document.querySelector("[data-expires-in]");
    if (!el) return;
    var deadline = Date.now() + Number(el.getAttribute("data-expires-in")) * 1000;
    var remaining = el.querySelector(".remaining");
    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      remaining.textContent = formatRemaining(left);
      if (left > 0) {
        setTimeout(tick, 1000);
        return;
      }
      el.classList.add("expired");
      el.textContent = "This sign-in has expired.";
      document.querySelectorAll("form.signin button, form.signin input").forEach(function (b) { b.disabled = true; });
      // The server finishes the session as TIMEOUT; reloading shows its outcome page.
      setTimeout(function () { window.location.reload(); }, 1500);
    }
    tick();
  }

  function post(outcome) {
    var message = JSON.parse(outcome.getAttribute("data-post-message"));
    var origin = outcome.getAttribute("data-target-origin");
    if (window.opener) {
      window.opener.postMessage(message, origin);
    }
    window.close();
  }

  function wireOutcome() {
    var outcome = document.querySelector("[data-post-message]");
    if (!outcome) return;
    if (outcome.getAttribute("data-post-now") === "true") {
      post(outcome);
      return;
    }
    var button = outcome.querySelector(".post-message");
    if (button) button.addEventListener("click", function () { post(outcome); });
  }

  // The one continuation of a decided sign-in, whether it was decided by this page's form or
  // on the user's device (seen by polling): go to the portal, or show the outcome. Returns
  // whether the page moved on.
  var movedOn = false;
  function follow(next, onRetry) {
    if (movedOn || next.next === "wait") return movedOn;
    if (next.next === "retry") {
      onRetry(next);
      return false;
    }
    movedOn = true;
    if (next.next === "redirect") {
      window.location.assign(next.location);
    } else if (next.next === "outcome") {
      document.getElementById("main").innerHTML = next.html;
      wireOutcome();
    } else {
      window.location.reload();
    }
    return true;
  }

  function wireForm() {
    var form = document.querySelector("form.signin");
    if (!form || !window.fetch) return;
    var code = form.querySelector("#code");
    var feedback = form.querySelector("#feedback");
    // Pasted codes often carry spaces or dashes: keep the digits.
    code.addEventListener("paste", function (event) {
      var text = (event.clipboardData || window.clipboardData).getData("text");
      var digits = text.replace(/\D/g, "");
      if (digits) {
        event.preventDefault();
        code.value = digits;
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var submitter = event.submitter;
      var body = new URLSearchParams(new FormData(form));
      body.set("action", submitter ? submitter.value : "verify");
      var buttons = form.querySelectorAll("button");
      buttons.forEach(function (b) { b.disabled = true; });
      // Not `form.action`: the buttons are named "action", and a form's named controls
      // shadow its properties, so that would be the buttons, not the URL.
      fetch(form.getAttribute("action"), {
        method: "POST",
        body: body,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) { return response.json(); })
        .then(function (next) {
          follow(next, function (retry) {
            feedback.textContent = retry.error;
            code.setAttribute("aria-invalid", "true");
            code.value = "";
            code.focus();
            buttons.forEach(function (b) { b.disabled = false; });
          });
        })
        .catch(function () {
          // Without an answer, fall back to the plain form post. form.submit() sends no
          // submitter, so say which button it was: else a Deny would go as an empty code.
          var chosen = document.createElement("input");
          chosen.type = "hidden";
          chosen.name = "action";
          chosen.value = body.get("action");
          form.appendChild(chosen);
          form.submit();
        });
    });
  }

  // With a number shown, the user may approve on their device instead: ask the service, at
  // most once a second, whether the sign-in was decided, and then go on as after a code.
  function pollStatus() {
    var form = document.querySelector("form.signin");
    if (!document.querySelector("[data-push]") || !form || !window.fetch) return;
    // Only now may the page promise to go on by itself.
    document.documentElement.classList.add("js");
    var query = new URLSearchParams();
    ["signin_method", "session_token", "redirect_uri", "state"].forEach(function (name) {
      var field = form.querySelector('input[type="hidden"][name="' + name + '"]');
      if (field) query.set(name, field.value);
    });
    var url = "/start-authentication/status?" + query.toString();
    function ask() {
      if (movedOn) return;
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.json(); })
        .then(function (next) {
          if (!follow(next, function () {})) setTimeout(ask, 1000);
        })
        .catch(function () { setTimeout(ask, 2000); });
    }
    setTimeout(ask, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    startCountdown();
    wireForm();
    wireOutcome();
    pollStatus();
  });
})();
