// Automation rule form: show only the fields of the chosen trigger (the form works without this).
(function () {
  "use strict";
  function sync(select) {
    var kind = select.value;
    document.querySelectorAll("[data-trigger]").forEach(function (el) {
      el.hidden = el.getAttribute("data-trigger") !== kind;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector("[data-trigger-kind]");
    if (!select) return;
    sync(select);
    select.addEventListener("change", function () { sync(select); });
  });
})();
