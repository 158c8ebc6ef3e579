// The sign-in page's enhancements. The page works without them (plain form posts); with
// them it counts down, submits without a full reload and, in a popup, reports the outcome
// to the portal with postMessage to the portal's own origin (never "*").
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
          if (next.next === "retry") {
            feedback.textContent = next.error;
            code.setAttribute("aria-invalid", "true");
            code.value = "";
            code.focus();
            buttons.forEach(function (b) { b.disabled = false; });
          } else if (next.next === "redirect") {
            window.location.assign(next.location);
          } else if (next.next === "outcome") {
            document.getElementById("main").innerHTML = next.html;
            wireOutcome();
          } else {
            window.location.reload();
          }
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

  document.addEventListener("DOMContentLoaded", function () {
    startCountdown();
    wireForm();
    wireOutcome();
  });
})();
