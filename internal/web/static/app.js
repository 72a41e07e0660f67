// sipward web UI: the little script the pages need. Everything works without
// it (forms post, every tab panel shows); with it, form tabs become ARIA
// tabs, Copy buttons copy, and a page that answered a form shows its own URL.
"use strict";
document.documentElement.classList.add("js");

(function () {
  function initTabs(root) {
    var list = root.querySelector("[role=tablist]");
    if (!list) return;
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
    var actions = root.querySelector(".form-actions[data-for-tabs]");

    function select(tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        var panel = document.getElementById(t.getAttribute("aria-controls"));
        if (panel) panel.classList.toggle("inactive", !on);
      });
      if (actions) {
        var panel = document.getElementById(tab.getAttribute("aria-controls"));
        actions.classList.toggle("inactive", !!(panel && panel.hasAttribute("data-outside-form")));
      }
      if (focus) tab.focus();
    }

    tabs.forEach(function (t, i) {
      t.addEventListener("click", function () { select(t, false); });
      t.addEventListener("keydown", function (e) {
        var j = null;
        if (e.key === "ArrowRight") j = (i + 1) % tabs.length;
        else if (e.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
        else if (e.key === "Home") j = 0;
        else if (e.key === "End") j = tabs.length - 1;
        if (j !== null) { e.preventDefault(); select(tabs[j], true); }
      });
    });
    var active = tabs.filter(function (t) { return t.getAttribute("aria-selected") === "true"; })[0] || tabs[0];
    select(active, false);

    // A link to a tab (data-tab, the seed's warning) selects it in place.
    root.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("a[data-tab]");
      var tab = a && document.getElementById("tab-" + a.getAttribute("data-tab"));
      if (!tab || tabs.indexOf(tab) < 0) return;
      e.preventDefault();
      select(tab, true);
    });

    // A link to a field (the error summary) opens the field's tab first.
    root.ownerDocument.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("a[href^='#f-']");
      if (!a) return;
      var el = document.getElementById(a.getAttribute("href").slice(1));
      var panel = el && el.closest("[role=tabpanel]");
      if (!panel || !root.contains(panel)) return;
      var tab = document.getElementById(panel.getAttribute("aria-labelledby"));
      if (tab) select(tab, false);
      e.preventDefault();
      el.focus();
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.className = "sr-only";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      document.body.removeChild(ta);
      if (ok) resolve(); else reject(new Error("copy refused"));
    });
  }

  function initCopy(btn) {
    btn.addEventListener("click", function () {
      var src = document.getElementById(btn.getAttribute("data-copy"));
      var status = document.getElementById(btn.getAttribute("data-status"));
      if (!src) return;
      var text = src.textContent.trim();
      copyText(text).then(function () {
        btn.setAttribute("data-copied", "true");
        if (status) status.textContent = "Copied to the clipboard.";
      }, function () {
        var range = document.createRange();
        range.selectNodeContents(src);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        if (status) status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
      });
    });
  }

  // A refused form's error summary takes the focus, so it is read out and
  // in view, whether the form posted normally or htmx swapped the answer.
  function focusSummary() {
    var el = document.querySelector(".error-summary");
    if (el && document.activeElement !== el) el.focus();
  }

  // Each cell of a list table gets its column's name as data-label, which
  // the narrow layout shows above it (tables become stacked cards). Cells
  // the template labelled keep theirs.
  function labelCells(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".table-wrap table"), function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
        Array.prototype.forEach.call(tr.children, function (td, i) {
          if (heads[i] && !td.hasAttribute("data-label")) td.setAttribute("data-label", heads[i]);
        });
      });
    });
  }

  // A form with data-confirm asks its question first. OK adds confirmed=1,
  // which tells the server the action was confirmed; without it (no
  // script) the server shows its own confirmation page instead.
  function confirmSubmit(e) {
    var form = e.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (!msg) return;
    if (!window.confirm(msg)) { e.preventDefault(); return; }
    var input = form.querySelector("input[name=confirmed]");
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = "confirmed";
      form.appendChild(input);
    }
    input.value = "1";
  }

  // A field with data-show-if="name=value" shows (and posts) only while
  // its form's control name has that value: the egress credentials of an
  // endpoint that receives calls.
  function initShowIf(el) {
    var spec = el.getAttribute("data-show-if").split("=");
    var form = el.closest("form");
    var control = form && form.elements[spec[0]];
    if (!control) return;
    function update() {
      var on = control.value === spec[1];
      el.hidden = !on;
      Array.prototype.forEach.call(el.querySelectorAll("input, select, textarea"), function (i) { i.disabled = !on; });
    }
    control.addEventListener("change", update);
    update();
  }

  // A row edited in place (rewrite rules, CLI patterns, DIDs) keeps the
  // keyboard focus: on its first input (or the one in error) when it turns
  // into a form, on its Edit button when it is saved or cancelled.
  var swappedRow = null;
  document.addEventListener("htmx:beforeSwap", function (e) {
    var t = e.detail.target;
    swappedRow = t && t.matches && t.matches("tr[id]") ? t.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var row = swappedRow && document.getElementById(swappedRow);
    swappedRow = null;
    if (!row) return;
    var el = row.querySelector("[aria-invalid=true]") || row.querySelector("input:not([type=hidden]), select, a.btn");
    if (el) el.focus();
  });

  // A live list (data-live: htmx polls it) waits while the user types in a
  // field of the page or moves through the list with the keyboard: a
  // refresh would take their place away.
  function pauseLive(e) {
    var elt = e.detail && e.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-live")) return;
    var a = document.activeElement;
    if (a && a !== document.body && (a.closest("form") || elt.contains(a))) e.preventDefault();
  }

  function init() {
    var canonical = document.body.getAttribute("data-canonical");
    if (canonical && window.history && history.replaceState) {
      history.replaceState(null, "", canonical + window.location.hash);
    }
    Array.prototype.forEach.call(document.querySelectorAll("[data-tabs]"), initTabs);
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), initCopy);
    labelCells(document);
    document.body.addEventListener("htmx:afterSettle", function (e) { labelCells(e.target); });
    focusSummary();
    document.body.addEventListener("htmx:afterSettle", focusSummary);
    Array.prototype.forEach.call(document.querySelectorAll("[data-show-if]"), initShowIf);
    document.addEventListener("submit", confirmSubmit);
    document.body.addEventListener("htmx:beforeRequest", pauseLive);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
