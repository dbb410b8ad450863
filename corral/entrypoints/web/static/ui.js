// Progressive enhancement only: every page works without this file.
"use strict";
(function () {
  // Live step logs: <pre data-follow="URL"> follows the server-sent events at URL (a line per event).
  function follow(pre) {
    if (!window.EventSource) return;
    var source = new EventSource(pre.getAttribute("data-follow"));
    var n = pre.querySelectorAll(".line").length;
    source.addEventListener("line", function (ev) {
      n += 1;
      var span = document.createElement("span");
      span.className = "line";
      span.id = (pre.getAttribute("data-prefix") || "L") + n;
      span.textContent = ev.data;  // text, never HTML
      var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(span);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("end", function () { source.close(); });
    source.onerror = function () { source.close(); };
  }
  // Forms with data-confirm ask first (rollback, cancel).
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (ev) { if (!window.confirm(f.getAttribute("data-confirm"))) ev.preventDefault(); });
    });
  }
  // Trace waterfall: clicking a span bar opens its attributes.
  function spans() {
    document.querySelectorAll("[data-span]").forEach(function (g) {
      g.addEventListener("click", function () {
        var d = document.getElementById("span-" + g.getAttribute("data-span"));
        if (d) { d.open = true; d.scrollIntoView({block: "nearest"}); }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("pre[data-follow]").forEach(follow);
    confirmForms();
    spans();
  });
})();
