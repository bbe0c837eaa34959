// Calendar: drag a publication card to another day (month/week) or hour (day view) to reschedule it.
// The drop posts to /calendar/move; a refusal is shown inline and the card goes back where it was.
// Conflicts can be overridden with "Schedule anyway". Without this file every card has a "Move" form.
(function () {
  "use strict";

  var dragging = null; // {card, parent, next}
  var pending = null; // the last refused drop, for "Schedule anyway"

  function root() { return document.getElementById("calendar"); }

  function showMessage(text, canForce) {
    var box = document.getElementById("cal-message");
    var p = document.getElementById("cal-message-text");
    var force = document.getElementById("cal-force");
    if (!box || !p) return;
    p.textContent = text;
    if (force) force.hidden = !canForce;
    box.hidden = false;
  }

  function hideMessage() {
    var box = document.getElementById("cal-message");
    if (box) box.hidden = true;
    pending = null;
  }

  function putBack(state) {
    if (!state || !state.parent) return;
    if (state.next && state.next.parentNode === state.parent) state.parent.insertBefore(state.card, state.next);
    else state.parent.appendChild(state.card);
  }

  function dropTargetOf(node) {
    while (node && node !== document) {
      if (node.getAttribute && node.getAttribute("data-drop") === "1") return node;
      node = node.parentNode;
    }
    return null;
  }

  function placeCard(card, target) {
    var holder = target.querySelector(".cal-hour-items") || target;
    holder.appendChild(card);
  }

  function send(state, force) {
    var cal = root();
    var body = new URLSearchParams();
    var csrf = cal.getAttribute("data-csrf") || "";
    body.set("csrf_token", csrf);
    body.set("publication_id", state.card.getAttribute("data-publication-id"));
    body.set("date", state.target.getAttribute("data-date"));
    if (state.target.hasAttribute("data-hour")) body.set("hour", state.target.getAttribute("data-hour"));
    body.set("tz", cal.getAttribute("data-tz") || "UTC");
    if (force) body.set("force", "1");
    state.card.classList.add("is-saving");
    return fetch(cal.getAttribute("data-move-url") || "/calendar/move", {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) { return { ok: resp.ok, data: data }; });
    }).then(function (res) {
      state.card.classList.remove("is-saving");
      if (res.ok) {
        var time = state.card.querySelector(".cal-time");
        if (time && res.data.local_time) {
          time.textContent = res.data.local_time;
          time.setAttribute("datetime", res.data.scheduled_at);
        }
        state.card.setAttribute("data-scheduled-at", res.data.scheduled_at || "");
        state.card.classList.remove("has-conflict");
        hideMessage();
        return;
      }
      var err = (res.data && res.data.error) || {};
      putBack(state);
      pending = err.can_force ? state : null;
      showMessage(err.message || "The publication could not be moved.", !!err.can_force);
    }).catch(function () {
      state.card.classList.remove("is-saving");
      putBack(state);
      showMessage("The server could not be reached; the publication was not moved.", false);
    });
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target;
    if (!card.classList || !card.classList.contains("cal-card") || card.getAttribute("data-movable") !== "1") return;
    dragging = { card: card, parent: card.parentNode, next: card.nextSibling };
    card.classList.add("is-dragging");
    if (event.dataTransfer) {
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.getAttribute("data-publication-id"));
    }
  });

  document.addEventListener("dragend", function (event) {
    if (event.target.classList) event.target.classList.remove("is-dragging");
    Array.prototype.forEach.call(document.querySelectorAll(".is-over"), function (n) { n.classList.remove("is-over"); });
  });

  document.addEventListener("dragover", function (event) {
    if (!dragging) return;
    var target = dropTargetOf(event.target);
    if (!target) return;
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "move";
    target.classList.add("is-over");
  });

  document.addEventListener("dragleave", function (event) {
    var target = dropTargetOf(event.target);
    if (target && !target.contains(event.relatedTarget)) target.classList.remove("is-over");
  });

  document.addEventListener("drop", function (event) {
    if (!dragging) return;
    var target = dropTargetOf(event.target);
    if (!target) return;
    event.preventDefault();
    target.classList.remove("is-over");
    var state = { card: dragging.card, parent: dragging.parent, next: dragging.next, target: target };
    dragging = null;
    if (state.parent === target || state.parent === target.querySelector(".cal-hour-items")) return;
    placeCard(state.card, target);
    send(state, false);
  });

  document.addEventListener("click", function (event) {
    var id = event.target && event.target.id;
    if (id === "cal-dismiss") hideMessage();
    if (id === "cal-force" && pending) {
      var state = pending;
      pending = null;
      placeCard(state.card, state.target);
      send(state, true);
    }
  });
})();
