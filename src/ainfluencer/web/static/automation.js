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

// Step builder: each row shows only the fields its action uses, and only one empty row after the last used one
// (the form works without this: every field is then visible and ignored where it does not apply).
(function () {
  "use strict";
  function syncRow(row) {
    var action = row.querySelector("[data-step-action]").value;
    row.setAttribute("data-action", action);
    row.querySelectorAll("[data-for]").forEach(function (el) {
      el.hidden = !action || el.getAttribute("data-for").split(" ").indexOf(action) < 0;
    });
  }
  function syncRows() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("[data-step-row]"));
    var last = -1;
    rows.forEach(function (row, i) { syncRow(row); if (row.getAttribute("data-action")) last = i; });
    rows.forEach(function (row, i) { row.hidden = i > last + 1; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (!document.querySelector("[data-step-row]")) return;
    syncRows();
    document.addEventListener("change", function (event) {
      if (event.target.matches && event.target.matches("[data-step-action]")) syncRows();
    });
  });
})();
