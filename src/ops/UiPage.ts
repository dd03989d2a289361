/**
 * The live membership page: one HTML document with its script and styles
 * inline (no build step), fed by `/events` (Server-Sent Events). It draws the
 * members as a table and as a ring coloured by state, a timeline of events,
 * each live member's phi and last-heard as small charts, the tags, awareness,
 * counters and the keyring's fingerprints.
 *
 * Elements tests rely on carry `data-testid`; each member row carries
 * `data-name` and `data-state`.
 *
 * @module
 * @since 0.1.0
 */

/** The page. */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shoal</title>
<style>
  :root { --alive: #2e9d5b; --suspect: #e0a100; --dead: #d1434b; --left: #8a8f98; --ink: #1d2330; --muted: #6a7280; --line: #e3e6eb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f6f7f9; }
  header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 17px; margin: 0; }
  header .meta { color: var(--muted); }
  #conn { margin-left: auto; font-size: 12px; }
  main { display: grid; grid-template-columns: 360px 1fr; gap: 16px; padding: 16px 20px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
  section h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 8px; }
  .wide { grid-column: 1 / -1; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 500; }
  td.tags { white-space: normal; color: var(--muted); }
  .state { display: inline-block; padding: 0 6px; border-radius: 9px; color: #fff; font-size: 11px; }
  .Alive { background: var(--alive); } .Suspect { background: var(--suspect); } .Dead { background: var(--dead); } .Left { background: var(--left); }
  .counts { display: flex; gap: 14px; font-size: 22px; margin-bottom: 6px; }
  .counts span small { display: block; font-size: 11px; color: var(--muted); }
  #timeline { max-height: 260px; overflow: auto; font-family: ui-monospace, monospace; font-size: 12px; }
  #timeline div { padding: 1px 0; }
  .kv { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; font-family: ui-monospace, monospace; font-size: 12px; }
  .kv span:nth-child(odd) { color: var(--muted); }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px; }
  .chart { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
  .chart .title { display: flex; justify-content: space-between; font-size: 12px; }
  .chart svg { width: 100%; height: 44px; }
  code { font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1>shoal</h1>
  <span class="meta" data-testid="self"></span>
  <span class="meta" data-testid="status"></span>
  <span id="conn" data-testid="connection">connecting…</span>
</header>
<main>
  <section>
    <h2>Members</h2>
    <div class="counts" data-testid="counts"></div>
    <svg id="ring" data-testid="ring" viewBox="-160 -160 320 320" width="100%" height="320"></svg>
  </section>
  <section>
    <h2>Member table</h2>
    <table data-testid="members"><thead><tr><th>Name</th><th>State</th><th>Address</th><th>Inc</th><th>phi</th><th>Last heard</th><th>Tags</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide">
    <h2>phi (blue) and time since last heard (amber), per live member, last 2 minutes</h2>
    <div class="charts" data-testid="charts"></div>
  </section>
  <section>
    <h2>Events</h2>
    <div id="timeline" data-testid="timeline"></div>
  </section>
  <section>
    <h2>Node</h2>
    <div class="kv" data-testid="node"></div>
    <h2 style="margin-top:12px">Keyring fingerprints</h2>
    <div class="kv" data-testid="keys"></div>
    <h2 style="margin-top:12px">Counters</h2>
    <div class="kv" data-testid="counters"></div>
  </section>
</main>
<script>
"use strict";
const HISTORY_MS = 120000;
const history = new Map(); // id -> [{ts, phi, age}]
const el = (tag, attrs, text) => { const e = document.createElement(tag); for (const k in attrs || {}) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; };
const ago = (ts, now) => ts == null ? "-" : ((now - ts) < 1000 ? Math.round(now - ts) + "ms" : ((now - ts) / 1000).toFixed(1) + "s");
const tagText = (tags) => Object.keys(tags).sort().map((k) => k + "=" + tags[k]).join(", ");
const color = { Alive: "#2e9d5b", Suspect: "#e0a100", Dead: "#d1434b", Left: "#8a8f98" };
const order = (a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

function ring(members) {
  const svg = document.getElementById("ring");
  svg.textContent = "";
  const ns = "http://www.w3.org/2000/svg";
  const n = members.length;
  const circle = document.createElementNS(ns, "circle");
  circle.setAttribute("r", "110"); circle.setAttribute("fill", "none"); circle.setAttribute("stroke", "#e3e6eb");
  svg.appendChild(circle);
  members.forEach((m, i) => {
    const a = (i / Math.max(1, n)) * 2 * Math.PI - Math.PI / 2;
    const g = document.createElementNS(ns, "g");
    g.setAttribute("data-name", m.name); g.setAttribute("data-state", m.state);
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", String(110 * Math.cos(a))); dot.setAttribute("cy", String(110 * Math.sin(a)));
    dot.setAttribute("r", m.self ? "11" : "8"); dot.setAttribute("fill", color[m.state]);
    if (m.self) { dot.setAttribute("stroke", "#1d2330"); dot.setAttribute("stroke-width", "2"); }
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(140 * Math.cos(a))); label.setAttribute("y", String(140 * Math.sin(a) + (Math.sin(a) < -0.5 ? -4 : Math.sin(a) > 0.5 ? 12 : 4)));
    label.setAttribute("text-anchor", "middle"); label.setAttribute("font-size", "10"); label.textContent = m.name;
    const title = document.createElementNS(ns, "title"); title.textContent = m.name + " " + m.state + " " + m.address;
    g.append(dot, label, title); svg.appendChild(g);
  });
}

function spark(points, key, max, stroke) {
  if (points.length < 2) return "";
  const end = points[points.length - 1].ts;
  const span = Math.max(10000, end - points[0].ts);
  const t0 = end - span;
  const d = points.map((p, i) => (i ? "L" : "M") + (((p.ts - t0) / span) * 200).toFixed(1) + "," + (40 - Math.min(1, p[key] / max) * 38).toFixed(1)).join(" ");
  return '<path d="' + d + '" fill="none" stroke="' + stroke + '" stroke-width="1.5"/>';
}

function charts(state) {
  const box = document.querySelector("[data-testid=charts]");
  box.textContent = "";
  for (const m of state.members.filter((m) => !m.self && (m.state === "Alive" || m.state === "Suspect")).sort(order)) {
    const points = history.get(m.id) || [];
    const maxPhi = Math.max(8, ...points.map((p) => p.phi));
    const maxAge = Math.max(2000, ...points.map((p) => p.age));
    const c = el("div", { class: "chart", "data-name": m.name });
    const title = el("div", { class: "title" });
    title.append(el("b", {}, m.name), el("span", {}, "phi " + (m.phi == null ? "-" : m.phi.toFixed(2)) + " · heard " + ago(m.lastHeard, state.ts) + " ago"));
    c.appendChild(title);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 200 42"); svg.setAttribute("preserveAspectRatio", "none");
    svg.innerHTML = spark(points, "phi", maxPhi, "#5b6cff") + spark(points, "age", maxAge, "#e0a100");
    c.appendChild(svg);
    box.appendChild(c);
  }
}

function kv(selector, entries) {
  const box = document.querySelector(selector);
  box.textContent = "";
  for (const [k, v] of entries) box.append(el("span", {}, k), el("span", {}, String(v)));
}

function render(state) {
  for (const m of state.members) {
    if (m.self || m.phi == null) continue;
    const points = history.get(m.id) || [];
    points.push({ ts: state.ts, phi: m.phi, age: m.lastHeard == null ? 0 : state.ts - m.lastHeard });
    while (points.length && points[0].ts < state.ts - HISTORY_MS) points.shift();
    history.set(m.id, points);
  }
  const self = state.members.find((m) => m.self);
  document.querySelector("[data-testid=self]").textContent = self ? self.name + " · " + self.address : "";
  document.querySelector("[data-testid=status]").textContent = state.status + (state.healthy ? " · healthy" : " · unhealthy") + " · awareness " + state.awareness;
  const counts = document.querySelector("[data-testid=counts]");
  counts.textContent = "";
  for (const [k, label] of [["alive", "alive"], ["suspect", "suspect"], ["dead", "failed"], ["left", "left"]]) {
    const s = el("span", { "data-testid": "count-" + k }, String(state.counts[k]));
    s.appendChild(el("small", {}, label)); counts.appendChild(s);
  }
  const members = [...state.members].sort(order);
  ring(members);
  const body = document.querySelector("[data-testid=members] tbody");
  body.textContent = "";
  for (const m of members) {
    const tr = el("tr", { "data-name": m.name, "data-state": m.state });
    const badge = el("span", { class: "state " + m.state }, m.state);
    const stateCell = el("td"); stateCell.appendChild(badge);
    tr.append(el("td", {}, m.name + (m.self ? " (this node)" : "")), stateCell, el("td", {}, m.address), el("td", {}, String(m.incarnation)),
      el("td", {}, m.phi == null ? "-" : m.phi.toFixed(2)), el("td", {}, m.self ? "-" : ago(m.lastHeard, state.ts)), el("td", { class: "tags" }, tagText(m.tags)));
    body.appendChild(tr);
  }
  charts(state);
  kv("[data-testid=node]", self ? [["name", self.name], ["id", self.id], ["address", self.address], ["rpc", self.rpcAddress || "-"], ["incarnation", self.incarnation], ["tags", tagText(self.tags)], ["awareness", state.awareness]] : []);
  kv("[data-testid=keys]", state.keyFingerprints.length ? state.keyFingerprints.map((f, i) => [i === 0 ? "primary" : "key", f]) : [["keyring", "none (gossip is not encrypted)"]]);
  kv("[data-testid=counters]", Object.entries(state.counters));
}

function timeline(event) {
  const box = document.getElementById("timeline");
  const line = el("div", { "data-event": event.event, "data-name": event.name });
  line.textContent = new Date(event.ts).toISOString().slice(11, 23) + "  " + event.event.padEnd(13) + " " + event.name;
  line.style.color = color[event.state];
  box.prepend(line);
  while (box.childElementCount > 500) box.lastChild.remove();
}

const source = new EventSource("events");
const conn = document.getElementById("conn");
source.addEventListener("open", () => { conn.textContent = "live"; });
source.addEventListener("error", () => { conn.textContent = "reconnecting…"; });
source.addEventListener("state", (e) => render(JSON.parse(e.data)));
source.addEventListener("member", (e) => timeline(JSON.parse(e.data)));
</script>
</body>
</html>
`
