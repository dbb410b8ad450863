// Corral's UI for humans who audit and monitor: a thin client over the same REST API agents use.
"use strict";
const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));

async function api(method, path, body) {
  const headers = {"Accept": "application/json"};
  const csrf = sessionStorage.getItem("corral_csrf");
  if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {method, headers, credentials: "same-origin",
                                  body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    const err = new Error((data && (data.detail || data.title)) || resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function table(rows, columns) {
  if (!rows.length) return '<p class="muted">Nothing here yet.</p>';
  const head = columns.map(([label]) => `<th>${esc(label)}</th>`).join("");
  const body = rows.map((r) => "<tr>" + columns.map(([, f]) => `<td>${f(r)}</td>`).join("") + "</tr>").join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const views = {
  async "/"() {
    const me = await api("GET", "/api/v1/me");
    return `<h1>Welcome, <span id="me-name">${esc(me.name)}</span></h1>
      <p class="muted">${esc(me.email)}</p>
      <h2>Roles</h2><p id="me-roles">${(me.roles || []).map((r) => `<span class="pill">${esc(r.name || r)}</span>`).join("") || "none"}</p>
      <h2>Permissions</h2><p id="me-permissions">${(me.permissions || []).map((p) => `<span class="pill">${esc(p)}</span>`).join("") || "none"}</p>`;
  },
  async "/projects"() {
    const page = await api("GET", "/api/v1/projects?limit=100");
    return "<h1>Projects</h1>" + table(page.items, [
      ["Project", (p) => `<a href="#/projects/${esc(p.owner)}/${esc(p.name)}">${esc(p.owner)}/${esc(p.name)}</a>`],
      ["Visibility", (p) => esc(p.visibility)],
      ["Clone", (p) => `<code>${esc(p.clone_url)}</code>`],
    ]);
  },
  async "/projects/:owner/:name"(owner, name) {
    const base = `/api/v1/projects/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
    const [issues, mrs] = await Promise.all([
      api("GET", `${base}/issues?limit=50`).catch(() => ({items: []})),
      api("GET", `${base}/merge-requests?limit=50`).catch(() => ({items: []})),
    ]);
    return `<h1>${esc(owner)}/${esc(name)}</h1><h2>Issues</h2>` + table(issues.items, [
      ["#", (i) => esc(i.number)], ["Title", (i) => esc(i.title)], ["Status", (i) => esc(i.status)],
    ]) + "<h2>Merge requests</h2>" + table(mrs.items, [
      ["!", (m) => esc(m.number)], ["Title", (m) => esc(m.title)], ["Status", (m) => esc(m.status)],
      ["Branches", (m) => `${esc(m.source_branch)} → ${esc(m.target_branch)}`],
    ]);
  },
  async "/logs"() {
    const q = new URLSearchParams(location.hash.split("?")[1] || "");
    const page = await api("GET", "/api/v1/observe/logs?" + q.toString()).catch((e) => ({items: [], error: e.message}));
    return `<h1>Logs</h1><form id="log-search"><input name="q" placeholder="full text" value="${esc(q.get("q"))}">
      <input name="project" placeholder="owner/name" value="${esc(q.get("project"))}"><button>Search</button></form>
      ${page.error ? `<p class="error">${esc(page.error)}</p>` : ""}` + table(page.items, [
      ["Time", (l) => esc(l.timestamp)], ["Level", (l) => esc(l.level)], ["Service", (l) => esc(l.service)],
      ["Message", (l) => esc(l.message)], ["Trace", (l) => `<code>${esc(l.trace_id)}</code>`],
    ]);
  },
  async "/tokens"() {
    const page = await api("GET", "/api/v1/tokens");
    return `<h1>API tokens</h1><form id="token-form"><label>Name <input name="name" required></label>
      <label>Scopes (comma separated) <input name="scopes" value="project:read"></label><button>Create token</button></form>
      <p id="token-created" class="muted"></p>` + table(page.items, [
      ["Name", (t) => esc(t.name)], ["Scopes", (t) => (t.scopes || []).map(esc).join(", ")],
      ["Expires", (t) => esc(t.expires_at || "never")], ["Last used", (t) => esc(t.last_used_at || "never")],
    ]);
  },
  async "/account"() {
    const me = await api("GET", "/api/v1/me");
    return `<h1>Account</h1><p class="muted">Signed in as ${esc(me.name)}</p>
      <h2>Change password</h2>
      <form id="password-form">
        <label>Current password <input name="current_password" type="password" autocomplete="current-password" required></label>
        <label>New password <input name="new_password" type="password" autocomplete="new-password" minlength="8" required></label>
        <label>Repeat new password <input name="repeat_password" type="password" autocomplete="new-password" minlength="8" required></label>
        <button>Change password</button>
        <p class="error" id="password-error" role="alert"></p>
        <p class="muted" id="password-done" role="status"></p>
      </form>
      <p class="muted">Changing it signs out your other sessions. API tokens stay valid: revoke them on the Tokens page.</p>`;
  },
  async "/audit"() {
    const page = await api("GET", "/api/v1/audit?limit=100");
    return "<h1>Audit log</h1>" + table(page.items, [
      ["When", (a) => esc(a.created_at)], ["Actor", (a) => esc(a.actor_name)], ["Action", (a) => esc(a.action)],
      ["Resource", (a) => `${esc(a.resource)} <code>${esc(a.resource_id)}</code>`],
    ]);
  },
};

function route() {
  const path = (location.hash.replace(/^#/, "") || "/").split("?")[0];
  for (const [pattern, view] of Object.entries(views)) {
    const names = pattern.split("/"), parts = path.split("/");
    if (names.length !== parts.length) continue;
    const args = [];
    if (names.every((n, i) => (n.startsWith(":") ? (args.push(decodeURIComponent(parts[i])), true) : n === parts[i]))) {
      return [view, args];
    }
  }
  return [views["/"], []];
}

async function render() {
  const [view, args] = route();
  try {
    const html = await view(...args);
    $("#login").hidden = true;
    $("#nav").hidden = false;
    $("#view").hidden = false;
    $("#view").innerHTML = html;
    bindForms();
  } catch (err) {
    if (err.status === 401) {
      $("#nav").hidden = true;
      $("#view").hidden = true;
      $("#login").hidden = false;
    } else {
      $("#view").hidden = false;
      $("#view").innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
  }
}

function bindForms() {
  const tokenForm = $("#token-form");
  if (tokenForm) tokenForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(tokenForm);
    const scopes = String(f.get("scopes")).split(",").map((s) => s.trim()).filter(Boolean);
    const created = await api("POST", "/api/v1/tokens", {name: f.get("name"), scopes, project: null, expires_at: null});
    await render();
    $("#token-created").innerHTML = `Copy it now, it is shown once: <code id="new-token">${esc(created.token)}</code>`;
  });
  const passwordForm = $("#password-form");
  if (passwordForm) passwordForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(passwordForm);
    $("#password-error").textContent = "";
    $("#password-done").textContent = "";
    if (f.get("new_password") !== f.get("repeat_password")) {
      $("#password-error").textContent = "The new passwords do not match.";
      return;
    }
    try {
      const res = await api("POST", "/api/v1/me/password",
                            {current_password: f.get("current_password"), new_password: f.get("new_password")});
      sessionStorage.setItem("corral_csrf", res.csrf_token);  // the session was re-issued
      passwordForm.reset();
      $("#password-done").textContent = "Password changed; your other sessions were signed out.";
    } catch (err) {
      $("#password-error").textContent = err.message;
    }
  });
  const logForm = $("#log-search");
  if (logForm) logForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams([...new FormData(logForm)].filter(([, v]) => v));
    location.hash = "#/logs?" + q.toString();
  });
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {name: f.get("name"), password: f.get("password")};
  if (f.get("totp_code")) body.totp_code = f.get("totp_code");
  try {
    const res = await api("POST", "/api/v1/auth/login", body);
    sessionStorage.setItem("corral_csrf", res.csrf_token);
    $("#login-error").textContent = "";
    await render();
  } catch (err) {
    $("#login-error").textContent = err.message;
  }
});

$("#logout").addEventListener("click", async () => {
  await api("POST", "/api/v1/auth/logout").catch(() => null);
  sessionStorage.removeItem("corral_csrf");
  await render();
});

window.addEventListener("hashchange", render);
render();
