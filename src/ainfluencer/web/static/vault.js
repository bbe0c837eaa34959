// Vault and Studio: selection, confirmations, the keyboard review queue and live job progress.
// Every page works without this file; it only makes the same forms faster to use.
(function () {
  "use strict";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  // Select all / selected count for the batch bar (checkboxes live in the grid, tied by form="batch-form").
  var selectAll = document.getElementById("select-all");
  function boxes() { return $all('input[type=checkbox][name=ids]'); }
  function updateCount() {
    var out = document.getElementById("selected-count");
    if (!out) return;
    var n = boxes().filter(function (b) { return b.checked; }).length;
    out.textContent = n ? n + " selected" : "";
  }
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = selectAll.checked; });
      updateCount();
    });
  }
  document.addEventListener("change", function (event) {
    var t = event.target;
    if (t && t.name === "ids") updateCount();
    if (t && t.hasAttribute && t.hasAttribute("data-autosubmit") && t.form) t.form.submit();
  });

  // Buttons that destroy something ask first.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });

  // ---- review queue: a approve, r reject, j next, k previous -------------------------------------------
  var queue = document.getElementById("review-queue");
  if (queue) {
    var items = $all(".review-item", queue);
    var index = 0;
    var labels = { approved: "Approved", rejected: "Rejected" };
    var csrf = queue.getAttribute("data-csrf") || "";
    queue.classList.add("js-queue");

    var waiting = function () { return items.filter(function (el) { return !el.hasAttribute("data-decided"); }); };
    var status = function (text) { var s = document.getElementById("review-status"); if (s) s.textContent = text; };
    var refreshStatus = function () {
      var left = waiting().length;
      status(left ? "Item " + (index + 1) + " of " + items.length + " · " + left + " waiting" : "All done");
    };
    var show = function (i) {
      if (!items.length) return;
      index = Math.max(0, Math.min(items.length - 1, i));
      items.forEach(function (el, j) { el.classList.toggle("is-current", j === index); });
      items[index].focus({ preventScroll: false });
      refreshStatus();
    };
    var nextWaiting = function () {
      for (var j = index + 1; j < items.length; j++) if (!items[j].hasAttribute("data-decided")) return j;
      for (var k = 0; k < items.length; k++) if (!items[k].hasAttribute("data-decided")) return k;
      return -1;
    };
    var decide = function (state) {
      var item = items[index];
      if (!item || item.hasAttribute("data-busy")) return;
      item.setAttribute("data-busy", "1");
      var body = new URLSearchParams();
      body.set("state", state);
      body.set("csrf_token", csrf);
      fetch(item.getAttribute("data-review-url"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (result) {
        item.removeAttribute("data-busy");
        if (!result.ok) {
          status((result.data && result.data.error && result.data.error.message) || "That did not work; reload the page.");
          return;
        }
        item.setAttribute("data-decided", result.data.review_state);
        item.classList.add("is-decided", "is-" + result.data.review_state);
        var label = item.querySelector("[data-state-label] .badge");
        if (label) {
          label.textContent = labels[result.data.review_state] || result.data.review_state;
          label.className = "badge badge-state-" + result.data.review_state;
        }
        var next = nextWaiting();
        if (next < 0) {
          refreshStatus();
          var done = document.getElementById("review-done");
          if (done) done.hidden = false;
          return;
        }
        show(next);
      }, function () {
        item.removeAttribute("data-busy");
        status("Network error; the choice was not saved.");
      });
    };
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      var t = event.target;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(t.tagName))) return;
      var key = event.key;
      if (key === "a") decide("approved");
      else if (key === "r") decide("rejected");
      else if (key === "j" || key === "ArrowDown") show(index + 1);
      else if (key === "k" || key === "ArrowUp") show(index - 1);
      else return;
      event.preventDefault();
    });
    queue.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (!button || !button.hasAttribute("data-review")) return;
      event.preventDefault();
      var item = button.closest(".review-item");
      var i = items.indexOf(item);
      if (i >= 0 && i !== index) show(i);
      decide(button.getAttribute("data-review"));
    });
    refreshStatus();
  }

  // ---- live progress of a generation job (polls the job API) ---------------------------------------------
  var panel = document.getElementById("progress");
  if (panel && panel.getAttribute("data-job-id")) {
    var jobId = panel.getAttribute("data-job-id");
    var bar = $("[data-job-bar]", panel), text = $("[data-job-text]", panel), badge = $("[data-job-status]", panel);
    var errorBox = $("[data-job-error]", panel), resultBox = $("[data-job-result]", panel);
    var initial = badge ? badge.textContent.trim() : "";
    var poll = function () {
      fetch("/api/v1/jobs/" + encodeURIComponent(jobId), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (job) {
          if (!job) { setTimeout(poll, 3000); return; }
          if (bar) bar.value = job.progress;
          if (text) text.textContent = job.progress + "%" + (job.progress_message ? " · " + job.progress_message : "");
          if (badge) { badge.textContent = job.status; badge.className = "badge badge-" + job.status; }
          if (errorBox) { errorBox.textContent = job.last_error || ""; errorBox.hidden = !job.last_error; }
          if (job.status === "succeeded") {
            if (resultBox) resultBox.hidden = false;
            if (initial !== "succeeded") setTimeout(function () { window.location.reload(); }, 800);
            return;
          }
          if (job.status === "failed" || job.status === "cancelled") return;
          setTimeout(poll, 1000);
        }, function () { setTimeout(poll, 3000); });
    };
    if (initial !== "succeeded" && initial !== "failed" && initial !== "cancelled") poll();
  }
})();
