// Switchboard panel behaviour. No inline scripts anywhere (the CSP allows only 'self').
(function () {
  "use strict";

  // Confirmation before destructive actions: <form data-confirm="Hang up this call?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

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

  // Polling: tell the server what we already show, so an unchanged list is a 204 (no swap).
  document.addEventListener("htmx:configRequest", function (event) {
    var fingerprint = event.detail.elt.getAttribute("data-fingerprint");
    if (fingerprint) event.detail.headers["X-Fingerprint"] = fingerprint;
  });

  // When a swap does happen, give focus back to the same control (ids are stable per call).
  var focusedId = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    focusedId = active && active.id && event.detail.target.contains(active) ? active.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    tick();
    if (focusedId) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
      focusedId = null;
    }
  });
})();
