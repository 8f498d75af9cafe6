"""The status page at ``/fabric/``: plain HTML and a little JavaScript (no build step).

It reads ``_health`` once, then follows ``_events``: a ``product_refreshed`` event updates that
product's row at once from the event (freshness, cached at, age 0) and ``_health`` is re-read for
the rest; ages tick every second on the page from ``cached at``, so they move without a request.
A slow ``_health`` re-read also runs every 10 s, and the event stream reconnects by itself
(``EventSource`` with the server's ``retry``).  Everything shown is set as text, never as HTML:
names and messages come from the server and are not trusted as markup.

Elements carry ids and classes tests and scripts can rely on: ``#product-<name>`` rows with
``.mode``, ``.freshness``, ``.age``, ``.cached-at``, ``.refreshes`` cells; ``#source-<name>`` rows
with ``.kind``, ``.circuit``, ``.last-success``; ``#live`` says ``live`` while the stream is open.
"""

HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DataFlow fabric</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}th{background:#f4f4f4}
.bad{color:#b00}.ok{color:#070}.warn{color:#a60}small{font-weight:normal;color:#666}
#live{font-size:12px;padding:.1em .5em;border-radius:.5em;background:#eee}#live.on{background:#dfd}
</style></head>
<body><h1>DataFlow fabric <small id="status">loading</small> <span id="live">connecting</span></h1>
<h2>Sources</h2><table id="sources"><thead><tr><th>source</th><th>kind</th><th>circuit</th>
<th>last success</th></tr></thead><tbody></tbody></table>
<h2>Products</h2><table id="products"><thead><tr><th>product</th><th>mode</th><th>freshness</th>
<th>age (s)</th><th>cached at</th><th>refreshes seen</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const seen = {}, cachedAt = {};
const CLS = {fresh: "ok", per_tenant: "ok", on_demand: "ok", stale: "warn", warming: "warn", error: "bad"};
function row(tbody, id, cols) {
  let tr = document.getElementById(id);
  if (!tr) {
    tr = document.createElement("tr"); tr.id = id;
    for (const c of cols) { const td = document.createElement("td"); td.className = c; tr.appendChild(td); }
    tbody.appendChild(tr);
  }
  return tr;
}
function set(tr, cls, text, state) {
  const td = tr.querySelector("." + cls); td.textContent = text === null || text === undefined ? "" : String(text);
  if (state !== undefined) td.className = cls + " " + (CLS[state] || "");
}
function showProduct(n, v) {
  const tr = row(document.querySelector("#products tbody"), "product-" + n,
                 ["name", "mode", "freshness", "age", "cached-at", "refreshes"]);
  set(tr, "name", n);
  set(tr, "mode", v.multi_tenant ? v.mode + " (per tenant: " + (v.tenants || 0) + ")" : v.mode);
  set(tr, "freshness", v.freshness, v.freshness);
  if (v.cached_at) cachedAt[n] = Date.parse(v.cached_at);
  else if (v.age === null || v.age === undefined) delete cachedAt[n];
  set(tr, "cached-at", v.cached_at || "");
  set(tr, "age", cachedAt[n] !== undefined ? Math.max(0, (Date.now() - cachedAt[n]) / 1000).toFixed(1)
                                           : (v.age === null || v.age === undefined ? "" : v.age));
  set(tr, "refreshes", seen[n] || 0);
}
function showSource(n, v) {
  const tr = row(document.querySelector("#sources tbody"), "source-" + n, ["name", "kind", "circuit", "last-success"]);
  const state = (v.circuit && v.circuit.state) || v.circuit_state || "unknown";
  set(tr, "name", n); set(tr, "kind", v.kind);
  set(tr, "circuit", state, v.healthy ? "fresh" : "error");
  set(tr, "last-success", v.last_success ? new Date(v.last_success * 1000).toISOString() : "never");
}
let loading = null;
async function load() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const h = await (await fetch("_health", {cache: "no-store"})).json();
      const st = document.getElementById("status"); st.textContent = h.status;
      st.className = h.status === "healthy" ? "ok" : h.status === "degraded" ? "warn" : "bad";
      for (const [n, v] of Object.entries(h.sources || {})) showSource(n, v);
      for (const [n, v] of Object.entries(h.products || {})) showProduct(n, v);
    } catch (e) { document.getElementById("status").textContent = "unreachable"; }
    finally { loading = null; }
  })();
  return loading;
}
function tick() {
  for (const [n, t] of Object.entries(cachedAt)) {
    const tr = document.getElementById("product-" + n);
    if (tr) set(tr, "age", Math.max(0, (Date.now() - t) / 1000).toFixed(1));
  }
}
const live = document.getElementById("live");
const es = new EventSource("_events");
es.onopen = () => { live.textContent = "live"; live.className = "on"; };
es.onerror = () => { live.textContent = "reconnecting"; live.className = ""; };
es.addEventListener("product_refreshed", e => {
  const d = JSON.parse(e.data); seen[d.product] = (seen[d.product] || 0) + 1;
  const tr = document.getElementById("product-" + d.product);
  if (tr && d.cached_at && !d.tenant) {
    cachedAt[d.product] = Date.parse(d.cached_at);
    set(tr, "cached-at", d.cached_at); set(tr, "freshness", "fresh", "fresh"); set(tr, "age", "0.0");
  }
  if (tr) set(tr, "refreshes", seen[d.product]);
  load();
});
es.addEventListener("product_failed", e => {
  const d = JSON.parse(e.data); const tr = document.getElementById("product-" + d.product);
  if (tr) set(tr, "freshness", "error", "error");
  load();
});
load(); setInterval(tick, 1000); setInterval(load, 10000);
</script></body></html>
"""
