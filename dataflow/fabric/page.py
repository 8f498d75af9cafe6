"""The status page at ``/fabric/``: plain HTML and a little JavaScript (no build step) that reads
``_health`` and re-reads it on every ``_events`` event."""

HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>DataFlow fabric</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}.bad{color:#b00}.ok{color:#070}</style></head>
<body><h1>DataFlow fabric <small id="status"></small></h1>
<h2>Sources</h2><table id="sources"><thead><tr><th>source</th><th>kind</th><th>circuit</th>
<th>last success</th></tr></thead><tbody></tbody></table>
<h2>Products</h2><table id="products"><thead><tr><th>product</th><th>mode</th><th>freshness</th>
<th>age (s)</th><th>cached at</th><th>refreshes seen</th></tr></thead><tbody></tbody></table>
<script>
const seen = {};
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text;
  if (cls) td.className = cls; tr.appendChild(td); }
async function load() {
  const h = await (await fetch("_health")).json();
  document.getElementById("status").textContent = h.status;
  const s = document.querySelector("#sources tbody"); s.replaceChildren();
  for (const [n, v] of Object.entries(h.sources)) { const tr = document.createElement("tr");
    tr.id = "source-" + n; cell(tr, n); cell(tr, v.kind); cell(tr, v.circuit.state, v.healthy ? "ok" : "bad");
    cell(tr, v.last_success ? new Date(v.last_success * 1000).toISOString() : "never"); s.appendChild(tr); }
  const p = document.querySelector("#products tbody"); p.replaceChildren();
  for (const [n, v] of Object.entries(h.products)) { const tr = document.createElement("tr");
    tr.id = "product-" + n; cell(tr, n); cell(tr, v.mode);
    cell(tr, v.freshness, v.freshness === "error" ? "bad" : "ok"); cell(tr, v.age === null ? "" : v.age);
    cell(tr, v.cached_at || ""); cell(tr, seen[n] || 0); p.appendChild(tr); }
}
const es = new EventSource("_events");
for (const kind of ["product_refreshed", "product_failed"]) es.addEventListener(kind, e => {
  const d = JSON.parse(e.data); seen[d.product] = (seen[d.product] || 0) + 1; load(); });
load(); setInterval(load, 5000);
</script></body></html>
"""
