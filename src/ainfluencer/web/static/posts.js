// Posts: "Write with <character>" in Compose (streamed into a text field), and the Review page's
// selection and keyboard shortcuts. No inline script: everything hangs off data attributes.
(function () {
  "use strict";

  // ---- Write with <character> ----------------------------------------------------------------------
  // The button posts {platform, brief} as JSON to the character's streaming writer (server-sent events
  // in the response body) and types the text into the field it names as it arrives.

  function readEvents(buffer, handle) {
    var blocks = buffer.replace(/\r\n?/g, "\n").split("\n\n");
    var rest = blocks.pop();
    blocks.forEach(function (block) {
      var name = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (data.length) handle(name, JSON.parse(data.join("\n")));
    });
    return rest;
  }

  function changed(field) {
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function platformOf(button) {
    var from = button.getAttribute("data-write-platform-from");
    var select = from && document.getElementById(from);
    return select ? select.value : button.getAttribute("data-write-platform");
  }

  function write(button) {
    var panel = button.closest("form").querySelector(".writer");
    var field = document.getElementById(button.getAttribute("data-write-into"));
    var status = document.getElementById("write-status");
    var brief = document.getElementById("c-brief");
    var token = button.closest("form").querySelector("input[name=csrf_token]");
    if (!panel || !field) return;
    var say = function (text) { if (status) status.textContent = text; };
    var finished = false;
    button.disabled = true;
    field.setAttribute("aria-busy", "true");
    field.value = "";
    say("Writing…");

    function handle(name, data) {
      if (name === "delta") {
        if (data.restart) field.value = "";
        field.value += data.text;
        say("Writing with " + data.backend + "…");
      } else if (name === "done") {
        finished = true;
        field.value = data.parts && data.parts.length ? data.parts.join("\n\n") : data.text;
        say("Written by " + data.backend + (data.flagged ? " — flagged: " + data.flag_reason : "") + ".");
        changed(field);
      } else if (name === "error") {
        finished = true;
        say("Writing failed: " + data.message);
      }
    }

    fetch(panel.getAttribute("data-write-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream",
                 "X-CSRF-Token": token ? token.value : "" },
      body: JSON.stringify({ platform: platformOf(button),
                             brief: brief ? brief.value : "" })
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (problem) {
          finished = true;
          say((problem && problem.error && problem.error.message) || "Writing failed (" + response.status + ").");
        });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { readEvents(buffer + decoder.decode() + "\n\n", handle); return; }
          buffer = readEvents(buffer + decoder.decode(chunk.value, { stream: true }), handle);
          return pump();
        });
      }
      return pump();
    }).catch(function (error) {
      finished = true;
      say("Writing failed: " + (error && error.message ? error.message : "connection lost") + ".");
    }).then(function () {
      if (!finished) say("The connection closed before the text was finished; try again.");
      field.removeAttribute("aria-busy");
      button.disabled = false;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-write-platform], button[data-write-platform-from]");
    if (!button) return;
    event.preventDefault();
    write(button);
  });

  // ---- Review: select all, and keyboard shortcuts ------------------------------------------------------
  // j / k move between posts, x ticks one, a approves, c asks for changes (focuses the note), d rejects,
  // e edits. Keys typed into a field are left alone.

  document.addEventListener("change", function (event) {
    var all = event.target;
    if (!all.matches || !all.matches("input[data-select-all]")) return;
    document.querySelectorAll("input[name=ids][form=" + all.getAttribute("data-select-all") + "]")
      .forEach(function (box) { box.checked = all.checked; });
  });

  function cards() { return Array.prototype.slice.call(document.querySelectorAll(".review-card")); }

  function current() {
    var active = document.activeElement;
    return active && active.closest ? active.closest(".review-card") : null;
  }

  function focusCard(card) {
    if (!card) return;
    card.focus();
    card.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (!document.querySelector(".review-list")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.matches && target.matches("input, textarea, select, [contenteditable]")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    var list = cards();
    var card = current();
    var index = card ? list.indexOf(card) : -1;
    var click = function (selector) {
      var button = card && card.querySelector(selector);
      if (button) { event.preventDefault(); button.click(); }
    };
    switch (event.key) {
      case "j": event.preventDefault(); focusCard(list[Math.min(index + 1, list.length - 1)]); break;
      case "k": event.preventDefault(); focusCard(list[Math.max(index - 1, 0)]); break;
      case "x": if (card) { event.preventDefault(); var box = card.querySelector("input[name=ids]"); box.checked = !box.checked; } break;
      case "a": click("button[data-action=approve]"); break;
      case "d": click("button[data-action=reject]"); break;
      case "e": click("a[data-action=edit]"); break;
      case "c":
        if (card) { event.preventDefault(); var note = card.querySelector("textarea[name=note]"); if (note) note.focus(); }
        break;
      default: break;
    }
  });
})();
