"""The page's HTML template and script: one file, plotly.js embedded once, no network.

The script draws each chart from its variants (one per metric and split, computed in Python):
those on screen at once, the others one at a time in the background (a chart scrolled to jumps
the queue), so the first screen is usable before every chart is drawn. It applies the section's
filters to every chart (points, traces and heatmap cells carry their page key; a chart of slices
follows the filters to a slice that fits), to the trial table and to the
gallery, sorts tables by a header click, recolours the training curves by the chosen field,
moves the gallery's step slider, and fills the findings' sample grids from the page's one list of
images.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "<", ">" or "&" appears raw."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(*, body: str, select: str, sections: str, data: dict, header: str) -> str:
    template = json.loads(go.Figure().to_json())["layout"]["template"]  # once, for every chart
    return PAGE.format(
        plotly=get_plotlyjs(),
        header=header,
        body=body,
        select=select,
        sections=sections,
        data=script_json(data),
        template=script_json(template),
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gan_rf report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1250px; color: #222; }}
.tbl {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }}
.tbl th, .tbl td {{ border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left; }}
.sortable th {{ cursor: pointer; user-select: none; background: #f3f3f3; }}
.sortable th[data-dir="asc"]::after {{ content: " ▲"; }}
.sortable th[data-dir="desc"]::after {{ content: " ▼"; }}
.scroll {{ max-height: 420px; overflow: auto; }}
.wide {{ max-width: 100%; overflow-x: auto; }}
pre {{ background: #f6f6f6; padding: 0.5em; font-size: 0.8em; overflow-x: auto; }}
.chart {{ width: 100%; height: 470px; }}
.controls {{ font-size: 0.85em; margin-top: 1em; }}
.filters {{ position: sticky; top: 0; background: #fff; padding: 4px 0; z-index: 5;
  border-bottom: 1px solid #ddd; font-size: 0.85em; }}
.running {{ background: #fff4d6; padding: 4px 8px; }}
.gallery {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.card {{ margin: 0; border: 1px solid #ddd; padding: 4px; font-size: 0.75em; width: 330px; }}
.card img, .noimg {{ width: 160px; height: 160px; image-rendering: pixelated; display: inline-block; }}
.noimg {{ background: #eee; text-align: center; line-height: 160px; color: #999; }}
.pane {{ display: inline-block; vertical-align: top; text-align: center; }}
.pane .lbl {{ display: block; color: #555; }}
.smoke {{ background: #ffd7d7; border: 1px solid #c00; padding: 6px 10px; font-weight: bold; }}
.control {{ padding: 6px 10px; font-weight: bold; }}
.control-pass {{ background: #dff3df; border: 1px solid #2a2; }}
.control-fail {{ background: #ffe9c7; border: 1px solid #c70; }}
.answer p {{ margin: 0.3em 0; }}
.sides {{ display: flex; flex-wrap: wrap; gap: 16px; margin: 0 0 0.8em 0; font-size: 0.75em; }}
.side {{ border-left: 3px solid #ddd; padding-left: 6px; }}
.side .config {{ margin-top: 2px; }}
.side .seeds {{ display: flex; gap: 4px; }}
.grid {{ margin: 0; text-align: center; }}
.grid img, .grid .noimg {{ width: 96px; height: 96px; line-height: 96px; image-rendering: pixelated; display: block; }}
.grid img, .card img {{ cursor: zoom-in; }}
#zoom {{ position: fixed; inset: 0; background: rgba(0, 0, 0, 0.8); display: flex; flex-direction: column; align-items: center; justify-content: center; z-index: 10; cursor: zoom-out; }}
#zoom[hidden] {{ display: none; }}
#zoom img {{ width: min(90vw, 85vh); height: auto; image-rendering: pixelated; background: #fff; }}
#zoom figcaption {{ color: #fff; margin-top: 6px; }}
</style>
<script>{plotly}</script>
</head><body>
<figure id="zoom" hidden><img alt=""><figcaption></figcaption></figure>
<h1>gan_rf: discriminator receptive field and what the generator learns</h1>
{header}
{body}
<p><label>dataset <select id="dataset">{select}</select></label></p>
{sections}
<script type="application/json" id="page-data">{data}</script>
<script type="application/json" id="plotly-template">{template}</script>
<script>
// JSON.parse of a script element's text is far faster than a JavaScript literal this size.
const DATA = JSON.parse(document.getElementById("page-data").textContent);
const TEMPLATE = JSON.parse(document.getElementById("plotly-template").textContent);
const PALETTE = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
const STATE = {{}};
function escHtml(s) {{
  return String(s).replace(/[&<>"']/g, c => ({{"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}})[c]);
}}
function allowed(sec) {{
  const S = DATA.sections[sec], f = STATE[sec] || {{}}, keys = new Set();
  for (const [k, t] of Object.entries(S.trials)) {{
    let ok = true;
    for (const [field, v] of Object.entries(f)) {{
      if (v === "") continue;
      if ((field === "status" ? t.status : t.f[field]) !== v) {{ ok = false; break; }}
    }}
    if (ok) {{ keys.add(k); keys.add(t.cfg); }}
  }}
  return keys;
}}
function filterTrace(t, keep) {{
  if (t.meta && t.meta.key !== undefined) return keep.has(t.meta.key) ? t : null;
  if (t.type === "heatmap" && t.meta && t.meta.keys) {{  // blank the cells the filters exclude
    const blank = a => a.map((row, i) => row.map((v, j) => keep.has(t.meta.keys[i][j]) ? v : null));
    for (const a of ["z", "text", "hovertext", "customdata"]) if (Array.isArray(t[a])) t[a] = blank(t[a]);
    return t;
  }}
  if (t.type === "parcoords" && t.meta && t.meta.keys) {{
    const idx = t.meta.keys.map((k, i) => keep.has(k) ? i : -1).filter(i => i >= 0);
    t.dimensions.forEach(d => d.values = idx.map(i => d.values[i]));
    if (Array.isArray(t.line.color)) t.line.color = idx.map(i => t.line.color[i]);
    return t;
  }}
  if (!Array.isArray(t.customdata) || typeof t.customdata[0] !== "string") return t;
  const idx = t.customdata.map((k, i) => keep.has(k) ? i : -1).filter(i => i >= 0);
  const pick = a => Array.isArray(a) ? idx.map(i => a[i]) : a;
  for (const a of ["x", "y", "customdata", "hovertext", "text"]) t[a] = pick(t[a]);
  if (t.error_y) {{ t.error_y.array = pick(t.error_y.array); t.error_y.arrayminus = pick(t.error_y.arrayminus); }}
  return t;
}}
function recolour(sec, data, split) {{
  const S = DATA.sections[sec], fields = split === "" ? S.fields : [split], seen = {{}};
  for (const t of data) {{
    if (!t.meta || t.meta.key === undefined) continue;
    const tr = S.trials[t.meta.key];
    const name = fields.map(f => f + "=" + tr.f[f]).join(" · ") || "trials";
    const first = !(name in seen);
    if (first) seen[name] = PALETTE[Object.keys(seen).length % PALETTE.length];
    Object.assign(t, {{name: escHtml(name), legendgroup: escHtml(name), showlegend: first}});
    t.line = Object.assign({{}}, t.line, {{color: seen[name]}});
  }}
  // the legend in numeric order (rf=3 before rf=13), whatever order the traces came in
  const ranks = Object.keys(seen).sort((a, b) => a.localeCompare(b, undefined, {{numeric: true}}));
  for (const t of data) if (t.name !== undefined) t.legendrank = 1000 + ranks.indexOf(t.name);
}}
// A slice ("head=patch · loss=hinge") fits the filters when none of its fields is filtered to
// another value; a chart of slices (the heatmap) follows the filters to the first that fits.
function fitsFilters(sec, slice) {{
  const f = STATE[sec] || {{}};
  return slice.split(" · ").every(p => {{
    const i = p.indexOf("="), v = i < 0 ? "" : f[p.slice(0, i)];
    return v === undefined || v === "" || v === p.slice(i + 1);
  }});
}}
function followFilters(sel, sec) {{
  if (!sel || fitsFilters(sec, sel.value)) return;
  const o = [...sel.options].find(o => fitsFilters(sec, o.value));
  if (o) sel.value = o.value;
}}
// Drawing: a chart is drawn when it is on screen (or near it), the others one at a time in the
// background, so the first screen is usable at once and input is handled between charts. A
// filter redraws the charts on screen and marks the rest stale (data-rendered="0") for the
// background. data-rendered="1": drawn and up to date.
const PENDING = new Set(), NEAR = new Set();
function draw(id) {{
  PENDING.delete(id);
  const el = document.getElementById(id), C = DATA.charts[id], sec = C.section;
  const gen = el.drawGen = (el.drawGen || 0) + 1;
  if (C.slices) followFilters(el.parentNode.querySelector("select.split"), sec);
  const metric = el.parentNode.querySelector("select.metric")?.value ?? C.metric;
  const split = el.parentNode.querySelector("select.split")?.value ?? C.split;
  const v = C.variants[metric][C.recolour ? "" : split];
  const keep = allowed(sec);
  let data = JSON.parse(JSON.stringify(v.data || C.variants[C.metric][""].data));
  if (v.ys) data.forEach((t, i) => t.y = v.ys[i]);  // training curves: only y differs
  data = data.map(t => filterTrace(t, keep)).filter(t => t);
  if (C.recolour) recolour(sec, data, split);
  const layout = Object.assign(JSON.parse(JSON.stringify(v.layout)), {{template: TEMPLATE}});
  return Plotly.react(el, data, layout, {{responsive: true}}).then(() => {{
    if (el.drawGen === gen && !PENDING.has(id)) el.dataset.rendered = "1";
  }});
}}
function stale(id) {{
  PENDING.add(id);
  document.getElementById(id).dataset.rendered = "0";
  schedule();
}}
let scheduled = false;
function schedule() {{
  if (!scheduled && PENDING.size) {{ scheduled = true; setTimeout(drawNext, 0); }}
}}
function drawNext() {{
  scheduled = false;
  const ids = [...PENDING], shown = id => document.getElementById(id).offsetParent !== null;
  const id = ids.find(i => NEAR.has(i) && shown(i)) || ids.find(shown) || ids[0];
  if (id !== undefined) draw(id);
  schedule();
}}
function onScreen(el) {{
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.bottom > -300 && r.top < innerHeight + 300;
}}
const observer = new IntersectionObserver(entries => {{
  for (const e of entries) e.isIntersecting ? NEAR.add(e.target.id) : NEAR.delete(e.target.id);
  schedule();
}}, {{rootMargin: "300px 0px"}});
function applyFilters(sec) {{
  const keep = allowed(sec), root = document.querySelector(`section[data-section="${{sec}}"]`);
  root.querySelectorAll("[data-key]").forEach(e => e.style.display = keep.has(e.dataset.key) ? "" : "none");
  root.querySelectorAll(".chart").forEach(c => onScreen(c) ? draw(c.id) : stale(c.id));
}}
function sortTable(th) {{
  const table = th.closest("table"), col = [...th.parentNode.children].indexOf(th);
  const dir = th.dataset.dir === "asc" ? "desc" : "asc";
  table.querySelectorAll("th").forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  const body = table.tBodies[0], rows = [...body.rows];
  const val = r => r.cells[col].dataset.v ?? r.cells[col].textContent.trim();
  rows.sort((a, b) => {{
    const x = val(a), y = val(b), nx = parseFloat(x), ny = parseFloat(y);
    const c = (x === "") - (y === "") || (!isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y));
    return dir === "asc" ? c : -c;
  }});
  rows.forEach(r => body.appendChild(r));
}}
// the findings' sample grids: indices into DATA.images, which holds each image once
document.querySelectorAll("img[data-img]").forEach(img => {{ img.src = DATA.images[+img.dataset.img]; }});
// a click on a sample grid (findings or gallery) shows it across the screen, pixels sharp, so
// the digits can be judged by eye as the notes did; a click or Escape closes it
const zoom = document.getElementById("zoom");
document.addEventListener("click", e => {{
  const img = e.target.closest(".grid img, .card img");
  if (img && img.getAttribute("src")) {{
    zoom.querySelector("img").src = img.src;
    zoom.querySelector("img").alt = img.alt;
    zoom.querySelector("figcaption").textContent = img.alt + " (click or Esc to close)";
    zoom.hidden = false;
  }} else if (!zoom.hidden) zoom.hidden = true;
}});
document.addEventListener("keydown", e => {{ if (e.key === "Escape") zoom.hidden = true; }});
function showStep(sec, i) {{
  const G = DATA.sections[sec].gallery, step = G.steps[i];
  const root = document.querySelector(`section[data-section="${{sec}}"]`);
  const out = root.querySelector(".step-slider + output");
  if (out) out.textContent = step;
  root.querySelectorAll(".card").forEach(card => {{
    const frames = G.frames[card.dataset.key] || [];
    let f = null;
    for (const x of frames) if (x[0] <= step) f = x;
    f = f || frames[0];
    ["samples", "ERF"].forEach((kind, j) => {{
      const img = card.querySelector("img." + kind), none = card.querySelector(".noimg." + kind);
      const src = f && f[j + 1] >= 0 ? DATA.images[f[j + 1]] : null;
      if (src) img.src = src;
      img.style.display = src ? "" : "none";
      none.style.display = src ? "none" : "";
    }});
    card.querySelector(".step").textContent = f ? "step " + f[0] : "";
  }});
}}
function showDataset(name) {{
  document.querySelectorAll("section.dataset").forEach(s => {{
    const on = s.dataset.dataset === name;
    s.style.display = on ? "" : "none";
    if (on) s.querySelectorAll(".chart").forEach(c => {{ if (c._fullLayout) Plotly.Plots.resize(c); }});
  }});
  schedule();
}}
document.querySelectorAll("table.sortable th").forEach(th => th.addEventListener("click", () => sortTable(th)));
document.querySelectorAll("select[data-filter]").forEach(s => s.addEventListener("change", () => {{
  const sec = s.dataset.section;
  STATE[sec] = STATE[sec] || {{}};
  STATE[sec][s.dataset.filter] = s.value;
  applyFilters(sec);
}}));
document.querySelectorAll(".controls select").forEach(s => s.addEventListener("change", () => {{
  draw(s.closest(".chartbox").querySelector(".chart").id);
}}));
Object.keys(DATA.sections).forEach(sec => {{
  const root = document.querySelector(`section[data-section="${{sec}}"]`);
  const slider = root.querySelector(".step-slider");
  if (slider) slider.addEventListener("input", () => showStep(sec, +slider.value));
  if (DATA.sections[sec].gallery.steps.length) showStep(sec, DATA.sections[sec].gallery.steps.length - 1);
}});
const sel = document.getElementById("dataset");
sel.addEventListener("change", () => showDataset(sel.value));
showDataset(sel.value);
// the charts on the first screen now, the rest in the background
document.querySelectorAll(".chart").forEach(c => {{ observer.observe(c); PENDING.add(c.id); }});
document.querySelectorAll(".chart").forEach(c => {{ if (onScreen(c)) draw(c.id); }});
schedule();
document.body.dataset.ready = "1";
</script>
</body></html>
"""
