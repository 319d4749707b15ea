// The operator page: plain JavaScript, no build step, no CDN (uPlot is vendored).
// The token lives in sessionStorage (this tab only) and travels only in the
// Authorization header — so the live stream is read with fetch(), not EventSource,
// which cannot send headers.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "callback-stats-token";
const $ = (id) => document.getElementById(id);
let session = null; // {controller, agent, today}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function setStatus(kind, text) {
  const el = $("status");
  el.className = "status " + kind;
  el.textContent = text;
}

function showError(text) {
  const el = $("error");
  el.hidden = !text;
  el.textContent = text || "";
}

class ApiFailure extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : "HTTP " + status);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(path, signal) {
  const response = await fetch(API + path, {
    headers: { Authorization: "Bearer " + token() }, signal, cache: "no-store" });
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) throw new ApiFailure(response.status, body);
  return body;
}

function explainFailure(err) {
  if (err.status === 401) {
    setStatus("bad-token", "token rejected");
    return "The token is wrong: the reader does not know it. Sign out and try another.";
  }
  if (err.status === 503) {
    setStatus("down", "Redis is down");
    return "Redis is down: the counter store is unavailable. The page retries by itself.";
  }
  return "Error: " + err.message;
}

function statsPath(agent) {
  return agent ? "/callback-agents/" + encodeURIComponent(agent) + "/stats"
               : "/callback-agents/stats";
}

function query(start, end) { return "?start_date=" + start + "&end_date=" + end; }

function addDays(iso, n) {
  const d = new Date(iso + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// A Server-Sent Events stream over fetch: calls onData(body) per event, reconnects with
// Last-Event-ID, reports its state.
async function follow(path, signal, onData) {
  let lastId = null;
  while (!signal.aborted) {
    try {
      const headers = { Authorization: "Bearer " + token() };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const response = await fetch(API + path, { headers, signal, cache: "no-store" });
      if (!response.ok) {
        let body = null;
        try { body = await response.json(); } catch (e) { /* not JSON */ }
        throw new ApiFailure(response.status, body);
      }
      setStatus("live", "live");
      showError("");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = {};
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const at = line.indexOf(": ");
            fields[at < 0 ? line : line.slice(0, at)] = at < 0 ? "" : line.slice(at + 2);
          }
          if (fields.event === "unavailable") {
            setStatus("down", "Redis is down");
            showError("Redis is down: the counter store is unavailable. The numbers will " +
                      "update again when it is back.");
          } else if (fields.data) {
            if (fields.id) lastId = fields.id;
            setStatus("live", "live");
            showError("");
            onData(JSON.parse(fields.data));
          }
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiFailure) {
        showError(explainFailure(err));
        if (err.status === 401 || err.status === 400) return;
      }
    }
    if (signal.aborted) return;
    setStatus("reconnecting", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function showToday(data) {
  $("today-received").textContent = data.total_callbacks_received;
  $("today-answered").textContent = data.callbacks_answered;
  $("today-unmatched").textContent = data.callbacks_unmatched;
}

function showSources(data) {
  const body = $("sources");
  body.replaceChildren();
  for (const row of data.callbacks_by_source_agent) {
    const tr = document.createElement("tr");
    for (const [text, cls] of [[row.source_agent_id, ""], [row.name || "–", ""],
                               [String(row.count), "num"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

let chart = null;
let chartTimer = null;

async function drawChart(s) {
  const days = [];
  for (let i = 29; i >= 0; i--) days.push(addDays(s.today, -i));
  const bodies = await Promise.all(days.map((d) =>
    api(statsPath(s.agent) + query(d, d), s.controller.signal)));
  const xs = days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
  const series = [xs, bodies.map((b) => b.data.total_callbacks_received),
                  bodies.map((b) => b.data.callbacks_answered),
                  bodies.map((b) => b.data.callbacks_unmatched)];
  $("chart").dataset.received = series[1].join(",");
  if (chart) { chart.setData(series); return; }
  chart = new uPlot({
    width: Math.min(960, $("chart").clientWidth || 900), height: 260,
    scales: { x: { time: true } },
    series: [{}, { label: "received", stroke: "#2457c5", width: 2 },
             { label: "answered", stroke: "#1f7a3a", width: 2 },
             { label: "unmatched", stroke: "#b3261e", width: 2 }],
  }, series, $("chart"));
}

function redrawSoon(s) {
  clearTimeout(chartTimer);
  chartTimer = setTimeout(() => drawChart(s).catch((err) => {
    if (!s.controller.signal.aborted) showError(explainFailure(err));
  }), 1000);
}

async function start() {
  if (session) session.controller.abort();
  const agent = $("agent").value.trim() || null;
  const s = { controller: new AbortController(), agent, today: null };
  session = s;
  $("signin-panel").hidden = true;
  $("board").hidden = false;
  $("signout").hidden = false;
  $("scope").textContent = agent ? "calls routed to " + agent : "all callback agents";
  setStatus("", "connecting…");
  try {
    const period = await api(statsPath(agent), s.controller.signal); // today, as the reader's zone says
    s.today = period.data.period.end;
  } catch (err) {
    if (!s.controller.signal.aborted) showError(explainFailure(err));
    if (err.status === 401) return;
    setTimeout(() => { if (session === s) start(); }, 3000);
    return;
  }
  $("today-day").textContent = s.today;
  redrawSoon(s);
  follow(statsPath(agent) + "/live" + query(s.today, s.today), s.controller.signal,
         (body) => { showToday(body.data); redrawSoon(s); });
  follow(statsPath(agent) + "/live", s.controller.signal, (body) => showSources(body.data));
}

async function explainCall(callId) {
  const out = $("call-result");
  out.replaceChildren();
  try {
    const body = await api("/callbacks/" + encodeURIComponent(callId));
    const table = document.createElement("table");
    table.id = "call-table";
    for (const [name, value] of Object.entries(body.data)) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = name;
      td.textContent = value === null ? "–" : String(value);
      td.dataset.field = name;
      tr.append(th, td);
      table.appendChild(tr);
    }
    out.appendChild(table);
  } catch (err) {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = err.status === 404
      ? "No such callback in this environment (unknown, or its record expired)."
      : explainFailure(err);
    out.appendChild(p);
  }
}

function signOut() {
  if (session) session.controller.abort();
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("board").hidden = true;
  $("signout").hidden = true;
  $("signin-panel").hidden = false;
  showError("");
  setStatus("", "signed out");
}

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  start();
});
$("agent-form").addEventListener("submit", (e) => { e.preventDefault(); start(); });
$("call-form").addEventListener("submit", (e) => {
  e.preventDefault();
  explainCall($("call-id").value.trim());
});
$("signout").addEventListener("click", signOut);
if (token()) start();
