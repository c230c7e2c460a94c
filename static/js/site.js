// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var toggle = document.querySelector(".nav-toggle");
  var nav = document.getElementById("main-nav");
  if (toggle && nav) {
    nav.classList.add("collapsed");
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      nav.classList.toggle("collapsed", open);
    });
  }

  // A table box that scrolls sideways (a wide table on a phone) must be reachable from the keyboard:
  // it becomes a named, focusable region; one that fits is left out of the tab order.
  function markScrollingTables() {
    var boxes = document.querySelectorAll(".table-scroll");
    for (var i = 0; i < boxes.length; i += 1) {
      var box = boxes[i];
      if (box.scrollWidth > box.clientWidth + 1) {
        var caption = box.querySelector("caption");
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        if (caption && !box.hasAttribute("aria-label")) {
          box.setAttribute("aria-label", caption.textContent.trim());
        }
      } else if (box.getAttribute("tabindex") === "0") {
        box.removeAttribute("tabindex");
      }
    }
  }
  markScrollingTables();
  window.addEventListener("resize", markScrollingTables);
})();

// Forms keep what was typed, in this tab only (sessionStorage), across two things that would lose it:
// switching the language (the page is fetched again) and a form refused because the session ended
// (the server sends the person through the sign-in and back to the form, with a "kept" message).
// Secrets and one-time values are never kept: passwords, files, CSRF tokens, submission keys.
(function () {
  "use strict";
  var KEY = "tanhui.keptForms";
  var MAX_AGE_MS = 30 * 60 * 1000;
  var SKIPPED = /^(csrf_token|submission_key|request_token|confirm|next)$|-csrf_token$/;
  var storage;
  try { storage = window.sessionStorage; } catch (e) { return; }
  if (!storage) { return; }

  function keptForms() {
    return Array.prototype.filter.call(document.querySelectorAll("main form"), function (form) {
      return !form.hasAttribute("data-no-keep") && form.elements.length > 0;
    });
  }

  function formKey(form) {
    return (form.getAttribute("action") || window.location.pathname) + "#" + (form.id || "");
  }

  function fieldsOf(form) {
    var fields = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || SKIPPED.test(el.name) || el.disabled) { return; }
      var type = (el.type || "").toLowerCase();
      if (type === "password" || type === "file" || type === "hidden" || type === "submit" || type === "button") { return; }
      if (type === "checkbox" || type === "radio") {
        fields.push({ name: el.name, value: el.value, checked: el.checked, choice: true });
      } else if (el.tagName === "SELECT" && el.multiple) {
        fields.push({ name: el.name, values: Array.prototype.filter.call(el.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; }) });
      } else {
        fields.push({ name: el.name, value: el.value });
      }
    });
    return fields;
  }

  // One entry per form (by its action), so signing in on the way back does not replace the form kept.
  function load() {
    var kept = null;
    try { kept = JSON.parse(storage.getItem(KEY) || "null"); } catch (e) { kept = null; }
    var entries = (kept && typeof kept === "object" && !Array.isArray(kept)) ? kept : {};
    Object.keys(entries).forEach(function (key) {
      if (!entries[key] || Date.now() - entries[key].at > MAX_AGE_MS) { delete entries[key]; }
    });
    return entries;
  }

  function store(entries) {
    try { storage.setItem(KEY, JSON.stringify(entries)); } catch (e) { /* storage full or refused: nothing kept */ }
  }

  function save(reason, only) {
    var entries = load();
    (only ? [only] : keptForms()).forEach(function (form) {
      var fields = fieldsOf(form);
      if (fields.length) { entries[formKey(form)] = { reason: reason, at: Date.now(), fields: fields }; }
    });
    store(entries);
  }

  function restore(form, fields) {
    fields.forEach(function (field) {
      var matches = Array.prototype.filter.call(form.elements, function (el) { return el.name === field.name; });
      matches.forEach(function (el) {
        if (field.choice) {
          if (el.value === field.value) { el.checked = field.checked; }
        } else if (field.values) {
          Array.prototype.forEach.call(el.options, function (o) { o.selected = field.values.indexOf(o.value) !== -1; });
        } else if (el.tagName === "SELECT") {
          if (Array.prototype.some.call(el.options, function (o) { return o.value === field.value; })) { el.value = field.value; }
        } else {
          el.value = field.value;
        }
        el.dispatchEvent(new Event("change", { bubbles: true }));
      });
    });
  }

  // A language switch brings back every form of the page; a "kept" message (the form was refused on the
  // way, e.g. the session had ended) brings back the one form sent last, not others sent earlier.
  var entries = load();
  var latest = null;
  if (document.querySelector(".flash-kept")) {
    keptForms().forEach(function (form) {
      var entry = entries[formKey(form)];
      if (entry && entry.reason === "submit" && (!latest || entry.at > entries[formKey(latest)].at)) { latest = form; }
    });
  }
  keptForms().forEach(function (form) {
    var entry = entries[formKey(form)];
    if (entry && (entry.reason === "language" || form === latest)) {
      restore(form, entry.fields);
      delete entries[formKey(form)];
    }
  });
  store(entries);

  Array.prototype.forEach.call(document.querySelectorAll("a[data-keeps-forms]"), function (link) {
    link.addEventListener("click", function () { save("language"); });
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.closest || !form.closest("main") || form.hasAttribute("data-no-keep")) { return; }
    if ((form.getAttribute("method") || "get").toLowerCase() !== "post") { return; }
    save("submit", form);
  });
})();
