// Publishing pages: confirmations, auto-submitting filters and the compose page's "publish now / at"
// toggle. The live preview itself is htmx (hx-post on the compose form, debounced by its trigger).
// Every page works without this file (CSP: no inline scripts).
(function () {
  "use strict";

  // <form data-confirm="..."> asks before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-confirm]")) return;
    if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });

  // <select data-autosubmit> submits its form when changed (the form also has a submit button).
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("select[data-autosubmit]") && select.form) select.form.submit();
  });

  // Compose: the date/time fields only matter when "At" is chosen.
  function syncWhen(form) {
    var at = form.querySelector("input[name=when][value=at]");
    var when = form.querySelector("input[name=scheduled_local]");
    var tz = form.querySelector("input[name=timezone]");
    if (!at || !when) return;
    when.disabled = !at.checked;
    if (tz) tz.disabled = !at.checked;
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.name === "when" && input.form) syncWhen(input.form);
  });

  // The compose form submits normally (Schedule); the preview request must carry the disabled fields' absence
  // just like the real submit, so nothing else is needed here.
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("compose-form");
    if (form) syncWhen(form);
  });
})();
