// Studio voice and video: engine capabilities on the voice form, the script's length estimate, image picking.
// Every form works without this file; it only helps.
(function () {
  "use strict";
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // voice form: enable pitch/style and set the speed range for the chosen engine; show its fix when unavailable
  var engine = $("[data-voice-engine]");
  if (engine) {
    var sync = function () {
      var opt = engine.options[engine.selectedIndex];
      if (!opt) return;
      var pitch = $("[data-voice-pitch]"), style = $("[data-voice-style]"), speed = $("[data-voice-speed]");
      var fix = $("[data-engine-fix]");
      if (pitch) pitch.disabled = opt.getAttribute("data-pitch") !== "1";
      if (style) style.disabled = opt.getAttribute("data-style") !== "1";
      if (speed) { speed.min = opt.getAttribute("data-speed-min"); speed.max = opt.getAttribute("data-speed-max"); }
      if (fix) {
        var unavailable = opt.getAttribute("data-available") !== "1";
        fix.textContent = unavailable ? opt.getAttribute("data-fix") : "";
        fix.hidden = !unavailable;
      }
    };
    engine.addEventListener("change", sync);
    sync();
  }

  // video form: characters and a rough speech-length estimate against the chosen format's limit
  var script = $("[data-script]");
  if (script) {
    var count = $("[data-script-count]"), seconds = $("[data-script-seconds]"), preset = $("[data-preset]");
    var update = function () {
      var n = script.value.replace(/\s+/g, " ").trim().length;
      var est = Math.round(n / 15);  // about 15 characters a second at speed 1.0
      if (count) count.textContent = String(n);
      if (seconds) seconds.textContent = String(est);
      var opt = preset && preset.options[preset.selectedIndex];
      var max = opt ? parseFloat(opt.getAttribute("data-max")) : 0;
      script.setCustomValidity(max && n / 25 > max ? "This script is too long for the chosen format." : "");
    };
    script.addEventListener("input", update);
    if (preset) preset.addEventListener("change", update);
    update();
  }
  var all = $("[data-images-all]"), none = $("[data-images-none]");
  function pick(on) { $$("input[name='image_ids']").forEach(function (box) { box.checked = on; }); }
  if (all) all.addEventListener("click", function () { pick(true); });
  if (none) none.addEventListener("click", function () { pick(false); });
})();
