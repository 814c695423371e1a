// galileo-sessions web view: live updates by polling (no framework, no network assets).
(function () {
  "use strict";
  var POLL_MS = 2000;

  function openFromHash() {
    if (location.hash.indexOf("#trace-") !== 0) return;
    var el = document.getElementById(location.hash.slice(1));
    if (el && el.tagName === "DETAILS") { el.open = true; el.scrollIntoView({block: "start"}); }
  }

  function liveSession(box) {
    var version = box.dataset.version, url = box.dataset.live;
    var head = document.getElementById("session-head");
    function tick() {
      fetch(url + "?v=" + encodeURIComponent(version), {cache: "no-store"})
        .then(function (r) {
          if (r.status !== 200) return null;
          return r.json();
        })
        .then(function (data) {
          if (!data) return;
          var open = {};
          box.querySelectorAll("details[data-key]").forEach(function (d) {
            open[d.dataset.key] = d.open;
          });
          // Server-rendered, escaped HTML from our own origin.
          box.innerHTML = data.traces;
          if (head) head.innerHTML = data.head;
          box.querySelectorAll("details[data-key]").forEach(function (d) {
            if (Object.prototype.hasOwnProperty.call(open, d.dataset.key)) {
              d.open = open[d.dataset.key];
            } else if (d.classList.contains("trace")) {
              d.classList.add("fresh");
            }
          });
          version = data.version;
          box.dataset.version = version;
        })
        .catch(function () {})
        .then(function () { setTimeout(tick, POLL_MS); });
    }
    setTimeout(tick, POLL_MS);
  }

  function liveList(notice) {
    if (notice.dataset.active !== "1") return;
    var seen = Number(notice.dataset.latest);
    function tick() {
      fetch("/ui/api/latest", {cache: "no-store"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && data.latest_seq > seen) { notice.hidden = false; return; }
          setTimeout(tick, POLL_MS);
        })
        .catch(function () { setTimeout(tick, POLL_MS); });
    }
    setTimeout(tick, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    openFromHash();
    window.addEventListener("hashchange", openFromHash);
    var box = document.getElementById("traces");
    if (box && box.dataset.live) liveSession(box);
    var notice = document.getElementById("new-sessions");
    if (notice) liveList(notice);
  });
})();
