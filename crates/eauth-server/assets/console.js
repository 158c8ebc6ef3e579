// The Domain Console's one enhancement: copy buttons for credentials and examples. Without
// JavaScript (or without a clipboard) the buttons stay hidden and the text can be selected.
"use strict";

(function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) return;
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent).then(
        function () { button.textContent = "Copied"; },
        function () { button.textContent = "Select and copy"; }
      );
      setTimeout(function () { button.textContent = label; }, 2000);
    });
  });
})();
