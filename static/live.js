// The live list: poll for what changed since the cursor, merge it in, and draw attention to
// it (highlight, tab title, an announcement for screen readers, an opt-in sound and desktop
// notification), with keyboard shortcuts. No inline scripts anywhere (the CSP allows 'self').
(function () {
  "use strict";
  var body = document.getElementById("live-calls");
  if (!body) return;
  var feed = body.getAttribute("data-feed");
  var cursor = body.getAttribute("data-cursor");
  var pollMs = parseInt(body.getAttribute("data-poll-ms"), 10) || 1000;
  var lagMs = parseInt(body.getAttribute("data-lag-ms"), 10) || 5000;
  var titleSuffix = body.getAttribute("data-title-suffix") || "";
  var announcer = document.getElementById("live-announcer");
  var emptyNote = document.getElementById("live-empty");
  var filter = document.getElementById("live-filter");
  var alertsToggle = document.getElementById("alerts-toggle");
  var shortcuts = document.getElementById("shortcuts");
  var recent = {};  // sid -> version received within the lag window (rows and removals)
  var held = [];    // new rows held back while the pointer is over the list (holdMs at most)
  var hovering = false, releaseTimer = null;
  var holdMs = parseInt(body.getAttribute("data-hold-ms"), 10) || 0;
  var heldNotice = document.getElementById("held-notice");
  var ALERTS_KEY = "switchboard.alerts";
  var ENDED = ["completed", "busy", "failed", "no-answer", "canceled"];

  function rows() {
    return Array.prototype.slice.call(body.querySelectorAll("tr[data-sid]"));
  }

  // Versions are naive UTC ISO times with microseconds; the same format compares as text.
  function minus(version, ms) {
    var then = new Date(Date.parse(version.slice(0, 23) + "Z") - ms);
    return then.toISOString().slice(0, 23) + "000";
  }

  function seenHeader() {
    var floor = minus(cursor, lagMs), parts = [];
    Object.keys(recent).forEach(function (sid) {
      if (recent[sid] > floor) parts.push(sid + "@" + recent[sid]);
      else delete recent[sid];
    });
    return parts.join(",");
  }

  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function setTitle(live, ringing) {
    document.title = (ringing > 0 ? "(" + ringing + " ringing) " : "") + live + " live" + titleSuffix;
  }

  // Where a row goes: a child leg after its parent's legs, any other call by age, newest first.
  function place(row) {
    var parent = row.getAttribute("data-parent") && document.getElementById("call-" + row.getAttribute("data-parent"));
    if (parent) {
      var after = parent;
      while (after.nextElementSibling && after.nextElementSibling.getAttribute("data-parent") === parent.getAttribute("data-sid")) {
        after = after.nextElementSibling;
      }
      after.after(row);
      return;
    }
    var created = row.getAttribute("data-created");
    var before = rows().find(function (other) {
      var otherParent = other.getAttribute("data-parent");
      if (otherParent && document.getElementById("call-" + otherParent)) return false;
      return other.getAttribute("data-created") < created;
    });
    body.insertBefore(row, before || null);
  }

  function arrive(row) {
    place(row);
    row.classList.add("is-new");
    window.setTimeout(function () { row.classList.remove("is-new"); }, 6000);
    var label = row.getAttribute("data-label");
    announce("New call " + label + ".");
    alertFor(row, label);
  }

  function replace(old, row) {
    var active = document.activeElement;
    var had = active && old.contains(active) ? (active === old ? "row" : active.getAttribute("data-key")) : null;
    old.replaceWith(row);
    if (had) {  // focus stays on the same control of the call, or on its row
      var again = had === "row" ? row : row.querySelector("[data-key='" + had + "']");
      (again || row).focus();
    }
    if (old.getAttribute("data-status") !== row.getAttribute("data-status") && row.getAttribute("data-status") === "in-progress") {
      announce("Call " + row.getAttribute("data-label") + " answered.");
    }
  }

  function merge(table) {
    cursor = table.getAttribute("data-cursor");
    var incoming = Array.prototype.slice.call(table.querySelectorAll("tr[data-sid]"));
    if (table.hasAttribute("data-reset")) {
      var before = {};
      rows().forEach(function (row) { before[row.getAttribute("data-sid")] = true; row.remove(); });
      recent = {};
      incoming.forEach(function (row) {
        body.appendChild(row);
        if (!before[row.getAttribute("data-sid")]) row.classList.add("is-new");
      });
    } else {
      incoming.forEach(function (row) {
        var sid = row.getAttribute("data-sid");
        recent[sid] = row.getAttribute("data-version");
        var old = document.getElementById("call-" + sid);
        if (row.hasAttribute("data-remove")) {
          held = held.filter(function (h) { return h.getAttribute("data-sid") !== sid; });
          if (!old) return;
          old.remove();
          var status = row.getAttribute("data-status");
          announce("Call " + row.getAttribute("data-label") +
                   (ENDED.indexOf(status) >= 0 ? " ended (" + status + ")." : " left this list."));
          return;
        }
        if (old) {
          if (old.getAttribute("data-version") !== row.getAttribute("data-version")) replace(old, row);
        } else if (hovering && holdMs > 0) {
          held = held.filter(function (h) { return h.getAttribute("data-sid") !== sid; });
          held.push(row);
          if (!releaseTimer) releaseTimer = window.setTimeout(release, holdMs);
        } else {
          arrive(row);
        }
      });
    }
    setTitle(parseInt(table.getAttribute("data-live"), 10), parseInt(table.getAttribute("data-ringing"), 10));
    settle();
  }

  function settle() {
    if (emptyNote) emptyNote.hidden = rows().length > 0 || held.length > 0;
    if (heldNotice) {
      heldNotice.hidden = held.length === 0;
      heldNotice.textContent = held.length === 1 ? "1 new call: it shows in a moment, or when the pointer leaves the list."
        : held.length + " new calls: they show in a moment, or when the pointer leaves the list.";
    }
    applyFilter();
    if (window.Switchboard && window.Switchboard.tick) window.Switchboard.tick();
  }

  // New calls wait while the pointer is over the list, so the row under it does not move as
  // it is clicked; at most holdMs, so a pointer resting there never hides a call for long.
  function release() {
    window.clearTimeout(releaseTimer);
    releaseTimer = null;
    held.splice(0).forEach(arrive);
    settle();
  }
  body.addEventListener("pointerenter", function () { hovering = true; });
  body.addEventListener("pointerleave", function () {
    hovering = false;
    release();
  });

  function poll() {
    var url = feed + (feed.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(cursor);
    fetch(url, {credentials: "same-origin", headers: {"X-Seen": seenHeader()}})
      .then(function (response) {
        if (response.redirected || response.status === 401) { window.location.reload(); return null; }
        if (response.status !== 200) return null;
        return response.text();
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var table = doc.getElementById("live-update");
        if (table) merge(table);
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { window.setTimeout(poll, pollMs); });
  }
  window.setTimeout(poll, pollMs);

  // ------------------------------------------------------------ opt-in sound and notification
  function alertsOn() {
    try { return window.localStorage.getItem(ALERTS_KEY) === "on"; } catch (e) { return false; }
  }
  var audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var tone = audio.createOscillator(), gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.08;
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.2);
    } catch (e) { /* no audio here */ }
  }
  function alertFor(row, label) {
    if (!alertsOn()) return;
    beep();
    if (window.Notification && Notification.permission === "granted") {
      new Notification("New call", {body: label, tag: row.getAttribute("data-sid")});
    }
  }
  if (alertsToggle) {
    alertsToggle.checked = alertsOn();
    alertsToggle.disabled = false;  // disabled in the page until this can remember it
    alertsToggle.addEventListener("change", function () {
      try { window.localStorage.setItem(ALERTS_KEY, alertsToggle.checked ? "on" : "off"); } catch (e) { /* private mode */ }
      if (alertsToggle.checked) {
        beep();  // also unlocks audio: browsers allow it only after a gesture
        if (window.Notification && Notification.permission === "default") Notification.requestPermission();
      }
    });
  }

  // ------------------------------------------------------------ filter and keyboard
  function applyFilter() {
    if (!filter) return;
    var query = filter.value.trim().toLowerCase();
    rows().forEach(function (row) {
      row.hidden = query !== "" && row.textContent.toLowerCase().indexOf(query) < 0;
    });
  }
  if (filter) filter.addEventListener("input", applyFilter);

  function selected() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("#live-calls tr[data-sid]") : null;
  }
  function move(step) {
    var visible = rows().filter(function (row) { return !row.hidden; });
    if (!visible.length) return;
    var index = visible.indexOf(selected());
    var next = index < 0 ? (step > 0 ? 0 : visible.length - 1) : Math.min(visible.length - 1, Math.max(0, index + step));
    visible[next].focus();
  }
  function press(key) {
    var row = selected();
    var control = row && row.querySelector("[data-key='" + key + "']");
    if (control) control.click();
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable], dialog")) {
      if (event.key === "Escape" && target === filter) filter.blur();
      return;
    }
    var onControl = target.closest && target.closest("a, button");
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter": if (onControl) return; press("open"); break;
      case "c": press("claim"); break;
      case "h": press("hangup"); break;
      case "/": if (filter) filter.focus(); break;
      case "?": if (shortcuts) shortcuts.showModal(); break;
      default: return;
    }
    event.preventDefault();
  });
  var shortcutsButton = document.getElementById("shortcuts-button");
  if (shortcutsButton && shortcuts) shortcutsButton.addEventListener("click", function () { shortcuts.showModal(); });
})();
