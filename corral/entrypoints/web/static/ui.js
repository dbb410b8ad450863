// Progressive enhancement only: every page works without this file.
"use strict";
(function () {
  // Live step logs: <pre data-follow="URL"> follows the server-sent events at URL (a line per event).
  function follow(pre) {
    if (!window.EventSource) return;
    var source = new EventSource(pre.getAttribute("data-follow"));
    var ansi = /\u001b\[[0-9;?]*[A-Za-z]/g;
    var shown = 0;
    pre.querySelectorAll(".line").forEach(function (l) { shown = Math.max(shown, parseInt(l.id.slice(1), 10) || 0); });
    source.onmessage = function (ev) {
      var n = parseInt(ev.lastEventId, 10);
      if (!(n > shown)) return;  // already on the page (the stored log)
      shown = n;
      var span = document.createElement("span");
      span.className = "line";
      span.id = "L" + n;
      var a = document.createElement("a");
      a.className = "ln";
      a.href = "#L" + n;
      a.textContent = String(n);
      span.appendChild(a);
      span.appendChild(document.createTextNode(ev.data.replace(ansi, "")));  // text, never HTML
      var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(span);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    };
    source.addEventListener("eof", function () { source.close(); pre.setAttribute("data-done", "1"); });
    source.onerror = function () { source.close(); };
  }
  // A live agent session: <ol data-agent-stream="URL"> appends each new event of the SSE stream (as text).
  function agentStream(list) {
    if (!window.EventSource || list.getAttribute("data-done")) return;
    var source = new EventSource(list.getAttribute("data-agent-stream"));
    ["text", "output", "message", "milestone", "status", "tool_use", "tool_result", "result"].forEach(function (type) {
      source.addEventListener(type, function (ev) {
        var e;
        try { e = JSON.parse(ev.data); } catch (err) { return; }
        if (document.getElementById("e" + e.id)) return;
        var li = document.createElement("li");
        li.className = "turn turn-" + type + " live";
        li.id = "e" + e.id;
        if (type === "tool_use" || type === "tool_result") {
          var d = document.createElement("details");
          var s = document.createElement("summary");
          s.textContent = type === "tool_use" ? "Tool call " + ((e.metadata || {}).name || "") : "Tool result";
          var pre = document.createElement("pre");
          pre.className = "card";
          pre.textContent = e.content;  // text, never HTML
          d.appendChild(s);
          d.appendChild(pre);
          li.appendChild(d);
        } else {
          li.textContent = (type === "text" || type === "output" ? "" : type + ": ") + e.content;
        }
        list.appendChild(li);
      });
    });
    source.addEventListener("end", function () { source.close(); list.setAttribute("data-done", "1"); });
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
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    if (target && target.tagName === "DETAILS") { target.open = true; }  // a span linked to from the waterfall
    document.querySelectorAll("[data-span]").forEach(function (g) {
      g.addEventListener("click", function () {
        var d = document.getElementById("span-" + g.getAttribute("data-span"));
        var all = document.getElementById("all-spans");  // a span past the listed ones: the page with all
        if (d) { d.open = true; d.scrollIntoView({block: "nearest"}); } else if (all) { window.location.href = all.href + "#span-" + g.getAttribute("data-span"); }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("pre[data-follow]").forEach(follow);
    document.querySelectorAll("[data-agent-stream]").forEach(agentStream);
    confirmForms();
    spans();
  });
})();
