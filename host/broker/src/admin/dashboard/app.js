// The operator dashboard. Plain JavaScript, no dependencies, served with a strict CSP: no inline
// script, and text is only ever written with textContent.
"use strict";

const MAX_EVENTS = 200;
const state = { csrf: null, socket: null, sessions: new Map(), counters: {} };

function $(id) { return document.getElementById(id); }

async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { ok: response.ok, status: response.status, data };
}

function count(name, by) {
  state.counters[name] = (state.counters[name] || 0) + (by === undefined ? 1 : by);
  const cell = $("count-" + name);
  if (cell) cell.textContent = String(state.counters[name]);
}

function setCount(name, value) {
  state.counters[name] = value;
  const cell = $("count-" + name);
  if (cell) cell.textContent = String(value);
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
  return td;
}

function renderSessions() {
  const body = document.querySelector("#sessions tbody");
  body.replaceChildren();
  for (const s of state.sessions.values()) {
    const row = document.createElement("tr");
    row.dataset.session = s.session_id;
    cell(row, s.session_id);
    cell(row, s.user);
    cell(row, s.client_address);
    cell(row, s.state);
    cell(row, s.desktop);
    cell(row, s.age_s);
    cell(row, s.node);
    const actions = cell(row, "");
    const end = document.createElement("button");
    end.type = "button";
    end.textContent = "End";
    end.className = "end-session";
    end.addEventListener("click", () => endSession(s.session_id, end));
    actions.appendChild(end);
    body.appendChild(row);
  }
  setCount("live", state.sessions.size);
}

async function loadSessions() {
  const result = await call("GET", "/dashboard/api/sessions");
  if (!result.ok || !result.data) return;
  state.sessions.clear();
  for (const s of result.data.sessions) {
    s.node = result.data.node;
    state.sessions.set(s.session_id, s);
  }
  renderSessions();
}

async function endSession(id, button) {
  button.disabled = true;
  const result = await call("POST", "/dashboard/api/sessions/end", { session_id: id });
  if (!result.ok) button.disabled = false;
}

function logEvent(event) {
  const list = $("events");
  const item = document.createElement("li");
  item.dataset.type = event.type || "";
  const who = event.user ? " " + event.user : "";
  const message = event.message && typeof event.message === "object" ? event.message : {};
  const detail = message.session_id ? " " + message.session_id : "";
  const reason = message.reason ? " (" + message.reason + ")" : "";
  item.textContent = "#" + event.seq + " " + (event.node || "") + " " + (event.type || "") + who + detail + reason;
  list.insertBefore(item, list.firstChild);
  while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
}

function onEvent(event) {
  if (!event || typeof event !== "object") return;
  if (event.channel !== "sessions" && event.channel !== "system" && event.channel !== "admin") return;
  logEvent(event);
  const m = event.message && typeof event.message === "object" ? event.message : {};
  switch (event.type) {
    case "session.created":
      count("created");
      state.sessions.set(m.session_id, {
        session_id: m.session_id, user: null, client_address: m.client ? m.client.ip : "",
        state: "created", age_s: 0, node: event.node,
      });
      renderSessions();
      break;
    case "session.authenticated": {
      count("logins");
      const s = state.sessions.get(m.session_id);
      if (s) { s.user = event.user; s.state = "authenticated"; renderSessions(); }
      break;
    }
    case "session.auth_failed":
    case "session.rate_limited":
      count("failed");
      break;
    case "session.allocated": {
      count("allocated");
      const s = state.sessions.get(m.session_id);
      if (s) { s.state = "allocated"; s.desktop = m.resource_id; renderSessions(); }
      break;
    }
    case "session.ended":
      count("ended");
      state.sessions.delete(m.session_id);
      renderSessions();
      break;
    default:
      break;
  }
}

async function connectFeed() {
  const result = await call("POST", "/dashboard/api/feed");
  if (!result.ok || !result.data || !result.data.conn_id) {
    setTimeout(connectFeed, 2000);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/feed/ws?conn_id=" + encodeURIComponent(result.data.conn_id));
  state.socket = socket;
  socket.addEventListener("open", () => {
    $("feed-state").textContent = "live";
    $("feed-state").classList.add("live");
  });
  socket.addEventListener("message", (message) => {
    let frame;
    try { frame = JSON.parse(message.data); } catch (_) { return; }
    if (Array.isArray(frame)) frame.forEach(onEvent);
  });
  socket.addEventListener("close", () => {
    $("feed-state").textContent = "offline";
    $("feed-state").classList.remove("live");
    if (state.csrf) setTimeout(connectFeed, 1000);
  });
}

async function start() {
  $("signin").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  const stats = await call("GET", "/dashboard/api/stats");
  if (stats.ok && stats.data) $("node").textContent = "node " + stats.data.node;
  await connectFeed();
  await loadSessions();
}

async function resume() {
  const result = await call("GET", "/dashboard/api/session");
  if (result.ok && result.data && result.data.csrf) {
    state.csrf = result.data.csrf;
    await start();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("signin-error").textContent = "";
    const result = await call("POST", "/dashboard/login", { token: $("token").value });
    $("token").value = "";
    if (!result.ok || !result.data) {
      $("signin-error").textContent = (result.data && result.data.request) || "sign-in failed";
      return;
    }
    state.csrf = result.data.csrf;
    await start();
  });
  $("logout").addEventListener("click", async () => {
    await call("POST", "/dashboard/logout");
    state.csrf = null;
    if (state.socket) state.socket.close();
    location.reload();
  });
  resume();
});
