// Switchboard panel behaviour. No inline scripts anywhere (the CSP allows only 'self').
(function () {
  "use strict";

  // Confirmation before destructive actions: <form data-confirm="Hang up this call?">, or on
  // the button that submits (a live-list row has one form for all its buttons).
  document.addEventListener("submit", function (event) {
    var form = event.target, button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) ||
                   (form.getAttribute && form.getAttribute("data-confirm"));
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Copy buttons: <button data-copy="id"> copies the text of the element with that id.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var done = function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(done, function () { select(source); });
    } else {
      select(source);
    }
  });
  function select(element) {  // no clipboard here (plain http): select it for Ctrl-C
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // TwiML preset picker: copy the chosen preset into the TwiML field.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches || !select.matches("select[data-preset-target]")) return;
    var option = select.options[select.selectedIndex];
    var twiml = option && option.getAttribute("data-twiml");
    var target = document.getElementById(select.getAttribute("data-preset-target"));
    if (twiml && target) {
      target.value = twiml;
    }
  });

  // Relative times: "4 min 05 s" (data-since) and "12 s ago" (data-ago), ticking every second.
  // The same words as the server's duration filter (panel.format_duration).
  function span(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
    if (h) return h + " h " + mm + " min " + ss + " s";
    if (m) return m + " min " + ss + " s";
    return s + " s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-since]").forEach(function (el) {
      el.textContent = span((now - Date.parse(el.getAttribute("datetime"))) / 1000);
    });
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      var seconds = (now - Date.parse(el.getAttribute("datetime"))) / 1000;
      if (seconds < 7 * 86400) el.textContent = seconds < 5 ? "just now" : span(seconds) + " ago";
    });
  }
  document.addEventListener("DOMContentLoaded", tick);
  setInterval(tick, 1000);
  window.Switchboard = {tick: tick};

  // Polling: tell the server what we already show, so an unchanged list is a 204 (no swap).
  document.addEventListener("htmx:configRequest", function (event) {
    var fingerprint = event.detail.elt.getAttribute("data-fingerprint");
    if (fingerprint) event.detail.headers["X-Fingerprint"] = fingerprint;
  });

  // When a swap does happen, give focus back to the same control (ids are stable per call).
  var focusedId = null;
  function rememberFocus(event) {
    var active = document.activeElement;
    if (active && active.id && event.detail.target && event.detail.target.contains(active)) {
      focusedId = active.id;
    }
  }
  // An expanded fold (<details id=…>) stays expanded when its region is swapped.
  var openDetails = [];
  function rememberOpen(event) {
    if (!event.detail.target) return;
    event.detail.target.querySelectorAll("details[open][id]").forEach(function (el) {
      openDetails.push(el.id);
    });
  }
  document.addEventListener("htmx:beforeSwap", rememberFocus);
  document.addEventListener("htmx:oobBeforeSwap", rememberFocus);
  document.addEventListener("htmx:beforeSwap", rememberOpen);
  document.addEventListener("htmx:afterSettle", function () {
    tick();
    showControls();
    openDetails.forEach(function (id) {
      var again = document.getElementById(id);
      if (again) again.open = true;
    });
    openDetails = [];
    if (focusedId) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
      focusedId = null;
    }
  });

  // A call's forms (Redirect, Send TwiML) live outside the polled regions, so typing is never
  // disturbed; each shows only while the call's state allows it (#call-bar's data-controls).
  function showControls() {
    var bar = document.getElementById("call-bar");
    if (!bar) return;
    var allowed = (bar.getAttribute("data-controls") || "").split(" ");
    document.querySelectorAll("[data-control]").forEach(function (el) {
      el.hidden = allowed.indexOf(el.getAttribute("data-control")) < 0;
    });
  }
})();
