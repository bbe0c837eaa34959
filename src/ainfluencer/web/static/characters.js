// Characters pages: live slider values, auto-submitting selects, "select all" for bulk actions and
// streamed writing.
// Every page works without this file (CSP: no inline scripts).
(function () {
  "use strict";

  var LEVELS = [[0.2, "very low"], [0.4, "low"], [0.6, "moderate"], [0.8, "high"], [1.01, "very high"]];

  function levelOf(value) {
    for (var i = 0; i < LEVELS.length; i++) {
      if (value < LEVELS[i][0]) return LEVELS[i][1];
    }
    return "very high";
  }

  // Show each trait slider's value (two decimals) and its level word while it moves.
  document.addEventListener("input", function (event) {
    var slider = event.target;
    if (!slider.matches || !slider.matches("input.trait-slider")) return;
    var value = parseFloat(slider.value);
    var output = document.getElementById(slider.id + "-value");
    if (output) output.textContent = value.toFixed(2);
    var hint = document.getElementById(slider.id + "-hint");
    var level = hint && hint.querySelector(".trait-level");
    var word = levelOf(value);
    if (level) level.textContent = word;
    // The behaviour follows the level word (the same bands as the server's trait_guidance).
    var guidance = hint && hint.querySelector(".trait-guidance");
    var band = word === "very low" || word === "low" ? "low" : word === "moderate" ? "mid" : "high";
    var text = slider.getAttribute("data-guide-" + band);
    if (guidance && text) guidance.textContent = text;
  });

  // <select data-autosubmit> submits its form when changed (the form also has a submit button).
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("select[data-autosubmit]") && select.form) {
      if (typeof select.form.requestSubmit === "function") select.form.requestSubmit();
      else select.form.submit();
    }
  });

  // Bulk selection: "select all" and a live count.
  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("input.row-check"));
  }
  function updateCount() {
    var label = document.getElementById("selected-count");
    if (!label) return;
    var n = boxes().filter(function (b) { return b.checked; }).length;
    label.textContent = n ? n + " selected" : "";
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      boxes().forEach(function (b) { b.checked = target.checked; });
      updateCount();
    } else if (target.classList && target.classList.contains("row-check")) {
      var all = document.getElementById("select-all");
      if (all) all.checked = boxes().every(function (b) { return b.checked; });
      updateCount();
    }
  });
  document.addEventListener("DOMContentLoaded", updateCount);

  // ---- Writing: stream the text into the page as the model writes it ------------------------------
  // <form data-stream-url data-output> posts its fields as JSON to the streaming API (EventSource cannot
  // POST) and reads the server-sent events from the response body. Without fetch streaming the form
  // posts normally and the page shows the result after a reload.

  var STREAM_FIELDS = ["platform", "kind", "style", "template", "brief", "reply_to"];

  function backendLabel(name) {
    return name === "offline" ? "the template writer (offline fallback)" : name;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function capitalize(word) {
    return word ? word.charAt(0).toUpperCase() + word.slice(1) : "";
  }

  function showError(output, message) {
    output.replaceChildren();
    var alert = el("div", "alert alert-error");
    alert.setAttribute("role", "alert");
    alert.appendChild(el("p", "", message));
    output.appendChild(alert);
  }

  // The saved text with its verdict: the same parts as the server's characters/_generated.html.
  function showDone(output, t) {
    var article = el("article", "sample generated" + (t.flagged ? " is-flagged" : ""));
    var meta = capitalize(t.platform) + " · " + (t.kind_label || t.kind.replace(/_/g, " ")) + " · " + t.style + " · written by " +
      backendLabel(t.backend) + (t.model ? " (" + t.model + ")" : "") + " · " + t.attempts + " attempt" + (t.attempts !== 1 ? "s" : "") +
      (t.cost_usd ? " · $" + t.cost_usd.toFixed(4) : "");
    article.appendChild(el("p", "sample-meta", meta));
    if (t.flagged) {
      var flag = el("div", "alert alert-error", "Flagged for a person to check: " + t.flag_reason + ".");
      flag.setAttribute("role", "status");
      article.appendChild(flag);
    }
    if (t.parts && t.parts.length) {
      var list = el("ol", "thread-parts");
      t.parts.forEach(function (part) { list.appendChild(el("li", "sample-text", part)); });
      article.appendChild(list);
    } else {
      article.appendChild(el("p", "sample-text generated-text", t.text));
    }
    var tags = t.hashtags ? t.hashtags.length : 0;
    article.appendChild(el("p", "sample-meta", Array.from(t.text).length + " characters" +
      (tags ? " · " + tags + " hashtag" + (tags !== 1 ? "s" : "") : "") +
      " · similarity to earlier texts " + t.near_dup_score.toFixed(2)));
    (t.notes || []).forEach(function (note) { article.appendChild(el("p", "hint warn-text", note)); });
    article.appendChild(useInPost(t.id));
    output.replaceChildren(article);
  }

  // "Use in a post": the same form the server renders under a written text (a draft opens in Compose).
  function useInPost(id) {
    var form = el("form", "use-in-post");
    form.method = "post";
    form.action = "/posts/from-text/" + id;
    var token = document.querySelector("input[name=csrf_token]");
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = "csrf_token";
    hidden.value = token ? token.value : "";
    form.appendChild(hidden);
    var button = el("button", "btn btn-secondary btn-sm", "Use in a post");
    button.type = "submit";
    form.appendChild(button);
    return form;
  }

  function startDraft(output) {
    var article = el("article", "sample generated is-streaming");
    var meta = el("p", "sample-meta", "Writing…");
    var text = el("p", "sample-text generated-text");
    article.appendChild(meta);
    article.appendChild(text);
    output.replaceChildren(article);
    return { meta: meta, text: text };
  }

  // Split "event: x\ndata: y\n\n" blocks; returns the unparsed rest.
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

  function markInvalid(form, field) {
    var input = field && form.elements.namedItem(field);
    if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
  }

  // A model that is down is never replaced silently: the person retries, or chooses the template writer.
  function offerChoices(form, output) {
    var actions = el("p", "actions");
    var retry = el("button", "btn btn-secondary btn-sm", "Retry");
    retry.type = "button";
    retry.addEventListener("click", function () { streamWriting(form); });
    var fallback = el("button", "btn btn-secondary btn-sm", "Use the template writer for this text");
    fallback.type = "button";
    fallback.addEventListener("click", function () {
      var allow = form.elements.namedItem("allow_template");
      if (allow) allow.checked = true;
      streamWriting(form);
    });
    actions.appendChild(retry);
    actions.appendChild(fallback);
    (output.querySelector(".alert") || output).appendChild(actions);
  }

  function streamWriting(form) {
    var output = document.getElementById(form.getAttribute("data-output"));
    var button = form.querySelector("button[type=submit]");
    var body = {};
    STREAM_FIELDS.forEach(function (name) {
      var input = form.elements.namedItem(name);
      var value = input ? input.value : "";
      body[name] = value || (name === "brief" ? "" : null);
    });
    var allow = form.elements.namedItem("allow_template");
    body.allow_template = !!(allow && allow.checked);
    var token = form.elements.namedItem("csrf_token");
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (input) {
      input.removeAttribute("aria-invalid");
    });
    if (button) button.disabled = true;
    output.setAttribute("aria-busy", "true");
    var draft = startDraft(output);
    var finished = false;

    function handle(name, data) {
      if (name === "delta") {
        if (data.restart) draft.text.textContent = "";
        draft.meta.textContent = "Writing with " + backendLabel(data.backend) + "…";
        draft.text.appendChild(document.createTextNode(data.text));
      } else if (name === "done") {
        finished = true;
        showDone(output, data);
      } else if (name === "error") {
        finished = true;
        showError(output, "Writing failed: " + data.message);
        if (data.can_use_template) offerChoices(form, output);
      }
    }

    fetch(form.getAttribute("data-stream-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "X-CSRF-Token": token ? token.value : ""
      },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (problem) {
          var error = (problem && problem.error) || {};
          markInvalid(form, error.field);
          showError(output, error.message || "Writing failed (" + response.status + ").");
          finished = true;
        }, function () {
          throw new Error("the server answered " + response.status);
        });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            readEvents(buffer + decoder.decode() + "\n\n", handle);
            return;
          }
          buffer = readEvents(buffer + decoder.decode(chunk.value, { stream: true }), handle);
          return pump();
        });
      }
      return pump();
    }).catch(function (error) {
      finished = true;
      showError(output, "Writing failed: " + (error && error.message ? error.message : "connection lost") + ".");
    }).then(function () {
      if (!finished) showError(output, "The connection closed before the text was finished; try again.");
      output.removeAttribute("aria-busy");
      if (button) button.disabled = false;
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-stream-url]")) return;
    if (!window.fetch || !window.TextDecoder || !window.ReadableStream || !document.getElementById(form.getAttribute("data-output"))) return;
    event.preventDefault();
    streamWriting(form);
  });
})();
