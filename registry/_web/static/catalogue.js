// The catalogue's only script. Every page works without it: it adds a copy button to install
// commands and submits the search form when a filter changes. No inline script anywhere
// (the Content-Security-Policy admits scripts from this origin only).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentElement.querySelector(".copied");
    if (!source || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent).then(function () {
        if (status) { status.textContent = "Copied"; }
      }, function () {
        if (status) { status.textContent = "Copy failed: select the command instead"; }
      });
    });
  });
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
});
