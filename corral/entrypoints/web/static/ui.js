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
  // Live log tail: the "Live" toggle of the log search follows new records over the tail WebSocket
  // (data-tail: its URL with the page's filters), adding each as the newest row (text, never HTML).
  function liveTail(status) {
    var toggle = document.getElementById("live-toggle");
    var box = document.getElementById("live");
    if (!toggle || !box || !window.WebSocket) return;
    toggle.hidden = false;
    var socket = null;
    var received = 0;
    function say(text) { status.hidden = !text; status.textContent = text; }
    function cell(tr, text, cls) {
      var td = document.createElement("td");
      if (cls) td.className = cls;
      td.textContent = text;
      tr.appendChild(td);
      return td;
    }
    function body() {
      var table = document.getElementById("log-table");
      if (!table) {
        var none = document.getElementById("no-logs");
        if (none) none.remove();
        var wrap = document.createElement("div");
        wrap.className = "scroll";
        table = document.createElement("table");
        table.className = "data";
        table.id = "log-table";
        var head = document.createElement("thead");
        var tr = document.createElement("tr");
        ["Time", "Level", "Service", "Message", "Context"].forEach(function (h, i) {
          var th = document.createElement("th");
          th.textContent = h;
          if (i === 4) th.className = "hide-narrow";
          tr.appendChild(th);
        });
        head.appendChild(tr);
        table.appendChild(head);
        table.appendChild(document.createElement("tbody"));
        wrap.appendChild(table);
        status.parentNode.insertBefore(wrap, status.nextSibling);
      }
      return table.tBodies[0];
    }
    function add(rec) {
      var tr = document.createElement("tr");
      tr.className = "lvl-" + rec.level + " live";
      var when = new Date(rec.timestamp);
      var t = cell(tr, isNaN(when) ? String(rec.timestamp) : when.toISOString().slice(11, 23));
      t.title = String(rec.timestamp);
      var lv = cell(tr, "");
      var badge = document.createElement("span");
      var bad = rec.level === "error" || rec.level === "fatal";
      badge.className = "status s-" + (bad ? "failure" : rec.level === "warn" ? "pending" : "info");
      badge.textContent = rec.level;
      lv.appendChild(badge);
      cell(tr, rec.service || "");
      cell(tr, rec.message || "", "log-message");
      var ctx = cell(tr, "", "hide-narrow small");
      if (rec.project) ctx.appendChild(document.createTextNode(rec.project + " "));
      if (rec.trace_id) {
        var a = document.createElement("a");
        a.href = "/ui/observe/traces/" + encodeURIComponent(rec.trace_id);
        a.textContent = "trace " + rec.trace_id.slice(0, 8);
        ctx.appendChild(a);
      }
      var tbody = body();
      tbody.insertBefore(tr, tbody.firstChild);
    }
    function start() {
      var url = new URL(status.getAttribute("data-tail"), window.location.href);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      socket = new WebSocket(url.toString());
      received = 0;
      say("Connecting…");
      socket.onopen = function () { say("Live: new records appear at the top."); status.setAttribute("data-live", "1"); };
      socket.onmessage = function (ev) {
        var rec;
        try { rec = JSON.parse(ev.data); } catch (err) { return; }
        received += 1;
        add(rec);
        say("Live: " + received + " new record" + (received === 1 ? "" : "s") + ".");
      };
      socket.onclose = function () {
        status.removeAttribute("data-live");
        if (box.checked) { box.checked = false; say("The live tail stopped; tick Live to follow again."); }
      };
    }
    box.addEventListener("change", function () {
      if (box.checked) { start(); return; }
      if (socket) { var s = socket; socket = null; s.onclose = null; s.close(); }
      status.removeAttribute("data-live");
      say("Paused.");
    });
  }
  // User fields (<input data-user-search list=...>): suggest names from the API's user search as one types.
  function userSearch(input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list || !window.fetch) return;
    var timer = null;
    input.addEventListener("input", function () {
      var words = input.value.split(",");
      var q = words[words.length - 1].trim();
      clearTimeout(timer);
      if (!q) return;
      timer = setTimeout(function () {
        fetch("/api/v1/users/search?limit=10&q=" + encodeURIComponent(q), {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.json() : {items: []}; })
          .then(function (page) {
            var prefix = words.slice(0, -1).map(function (w) { return w.trim(); }).filter(Boolean);
            list.textContent = "";
            (page.items || []).forEach(function (u) {
              var o = document.createElement("option");
              o.value = prefix.concat([u.name]).join(", ");
              o.textContent = u.display_name || u.name;  // text, never HTML
              list.appendChild(o);
            });
          })
          .catch(function () {});
      }, 200);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var tail = document.querySelector("[data-tail]");
    if (tail) liveTail(tail);
    document.querySelectorAll("input[data-user-search]").forEach(userSearch);
    document.querySelectorAll("pre[data-follow]").forEach(follow);
    document.querySelectorAll("[data-agent-stream]").forEach(agentStream);
    confirmForms();
    spans();
  });
})();
