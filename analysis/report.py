"""One self-contained interactive page (and a Markdown twin) comparing rf effects per dataset.

    python -m analysis runs/NAME [runs/OTHER ...] -o report.html

The page opens with the experiment report the notes ask for (network model, hyper-parameters,
final result per experiment), then, per dataset, plotly charts whose metric is switched with a
dropdown: metric against rf (one line per depth, mean and spread over seeds), an rf x depth
heatmap, metric against depth (one line per rf: the rf-equivalent question), image vs patch head,
theoretical and decision rf against the measured ERF, training curves, time per epoch, and a
gallery of each trial's latest samples and ERF map filterable by rf and depth. plotly.js is
embedded once; images are embedded as small JPEG thumbnails, so the file opens offline.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from analysis.figures import (
    available_metrics,
    esc,
    fig_curves,
    fig_erf,
    fig_heads,
    fig_heatmap,
    fig_metric_vs,
    fig_time,
)
from analysis.load import TRIAL_STATUSES, final_rows, load_experiment

THUMB_PX = 160


def _thumb(path: Path, px: int = THUMB_PX) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((px, px))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def gallery(final: pd.DataFrame, section: str) -> str:
    cards = []
    for _, r in final.sort_values(["rf", "depth", "head", "seed"]).iterrows():
        trial_dir = Path(r.get("trial_dir", ""))
        imgs = []
        for key, label in (("artifact/samples", "samples"), ("artifact/erf", "ERF")):
            rel = r.get(key)
            src = _thumb(trial_dir / rel) if isinstance(rel, str) else None
            imgs.append(
                f'<img alt="{label}" title="{label}" src="{src}">'
                if src
                else f'<div class="noimg">no {label}</div>'
            )
        cards.append(
            f'<figure class="card" data-rf="{esc(r["rf"])}" data-depth="{esc(r["depth"])}">'
            + "".join(imgs)
            + f"<figcaption>rf {esc(r['rf'])} · depth {esc(r['depth'])} · {esc(r['layers'])} · "
            f"{esc(r['head'])} · seed {esc(r['seed'])} · {esc(r['trial_status'])}</figcaption></figure>"
        )
    rfs = sorted(final["rf"].dropna().unique())
    depths = sorted(final["depth"].dropna().unique())

    def select(name, values):
        opts = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        return (
            f'<label>{name} <select data-filter="{name}" data-section="{esc(section)}">'
            f'<option value="">all</option>{opts}</select></label>'
        )

    return (
        f'<div class="filters">{select("rf", rfs)} {select("depth", depths)}</div>'
        f'<div class="gallery" id="gallery-{esc(section)}">{"".join(cards)}</div>'
    )


def notes_table(final: pd.DataFrame) -> pd.DataFrame:
    """The notes' table shape, extended with metrics: one row per trial."""
    rows = []
    for _, r in final.sort_values(["rf", "depth", "head", "seed"]).iterrows():
        cfg = json.loads(r.get("config") or "{}")
        status = r.get("trial_status")
        success = r.get("metric/success")
        result = {"diverged": "diverged", "errored": "errored", "timed_out": "timed out"}.get(
            status, "yes" if success == 1 else ("no" if success == 0 else "?")
        )
        note = []
        if status == "diverged" and pd.notna(r.get("diverged_step")):
            note.append(f"non-finite loss at step {int(r['diverged_step'])}")
        if pd.notna(r.get("metric/class_count")):
            note.append(f"{int(r['metric/class_count'])} classes")
        rows.append(
            {
                "rf size": f"{r['rf']}x{r['rf']}",
                "depth": r.get("depth"),
                "layers": r.get("layers"),
                "head": r.get("head"),
                "epochs": round(float(r["epoch"]), 2) if pd.notna(r.get("epoch")) else None,
                "noise_dim": cfg.get("g.noise_dim"),
                "time per epoch (s)": round(float(r["time/epoch_s"]), 2)
                if pd.notna(r.get("time/epoch_s"))
                else None,
                "result": result,
                "notes": ", ".join(note),
                "fid": _round(r.get("metric/fid")),
                "patch_fid": _round(r.get("metric/patch_fid")),
                "classifier score": _round(r.get("metric/classifier_score")),
                "ERF 95% (px)": r.get("erf/size95"),
                "decision rf": r.get("decision_rf"),
                "seed": r.get("seed"),
            }
        )
    return pd.DataFrame(rows)


def _round(v: Any) -> Any:
    return round(float(v), 3) if v is not None and pd.notna(v) else None


def hyperparameters(final: pd.DataFrame) -> dict[str, Any]:
    """Config keys shared by every trial of the experiment (what was held fixed)."""
    cfgs = [json.loads(c) for c in final["config"].dropna()]
    if not cfgs:
        return {}
    shared = {
        k: v
        for k, v in cfgs[0].items()
        if all(c.get(k) == v for c in cfgs) and not k.startswith("meta.")
    }
    return dict(sorted(shared.items()))


def architectures(final: pd.DataFrame) -> tuple[dict | None, list[dict]]:
    """G (one per experiment) and each distinct D, from the trials' design.json."""
    g, ds, seen = None, [], set()
    for _, r in final.iterrows():
        path = Path(r.get("trial_dir", "")) / "design.json"
        try:
            info = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        g = g or info["generator"]
        key = (
            info["discriminator"]["layers"],
            str(info["discriminator"]["channels"]),
            info["discriminator"]["head"],
        )
        if key not in seen:
            seen.add(key)
            ds.append(info["discriminator"])
    return g, ds


def _table_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, na_rep="", classes="tbl", border=0)


def build(frame: pd.DataFrame) -> tuple[str, str]:
    """(html, markdown) of the whole report."""
    final = final_rows(frame)
    md = ["# gan_rf report", ""]
    body = []
    # -- the experiment report ---------------------------------------------------------------
    body.append("<h2>Experiment report</h2>")
    for name, exp in final.groupby("experiment_name"):
        g, ds = architectures(exp)
        table = notes_table(exp)
        counts = exp["trial_status"].value_counts().to_dict()
        status_line = ", ".join(f"{counts.get(s, 0)} {s}" for s in TRIAL_STATUSES)
        body.append(
            f"<h3>{esc(name)} <small>({esc(exp['dataset'].iloc[0])}; {esc(status_line)})</small></h3>"
        )
        body.append(_table_html(table))
        hp = hyperparameters(exp)
        body.append(
            "<details><summary>hyper-parameters held fixed</summary>"
            + _table_html(pd.DataFrame({"key": list(hp), "value": [str(v) for v in hp.values()]}))
            + "</details>"
        )
        arch = []
        if g:
            arch.append(
                f"<h4>generator: {esc(g['kind'])}, noise {esc(g['noise_dim'])}, width {esc(g['width'])}, "
                f"{esc(g['params'])} parameters</h4><pre>{esc(chr(10).join(g['layers']))}</pre>"
            )
        for d in ds:
            arch.append(
                f"<h4>discriminator {esc(d['layers'])} ({esc(d['head'])} head, norm {esc(d['norm'])}, "
                f"{esc(d['params'])} parameters)</h4><pre>{esc(d['table'])}</pre>"
            )
        body.append(
            "<details><summary>architectures (layer tables with rf)</summary>"
            + "".join(arch)
            + "</details>"
        )
        md += [
            f"## {name} ({exp['dataset'].iloc[0]}; {status_line})",
            "",
            table.to_markdown(index=False),
            "",
            "Hyper-parameters held fixed:",
            "",
        ]
        md += [f"- `{k}`: {v}" for k, v in hp.items()]
        md += ["", "Architectures:", ""]
        if g:
            md += [
                f"Generator {g['kind']} (noise {g['noise_dim']}, width {g['width']}, {g['params']} params):",
                "",
                "```",
                *g["layers"],
                "```",
                "",
            ]
        for d in ds:
            md += [
                f"Discriminator {d['layers']} ({d['head']} head):",
                "",
                "```",
                d["table"],
                "```",
                "",
            ]
    # -- charts per dataset ------------------------------------------------------------------
    datasets = sorted(final["dataset"].dropna().unique())
    figs: list[tuple[str, go.Figure]] = []
    sections = []
    for ds_name in datasets:
        f_final = final[final["dataset"] == ds_name]
        f_all = frame[frame["dataset"] == ds_name]
        metrics = available_metrics(f_final)
        parts = [f'<section class="dataset" data-dataset="{esc(ds_name)}"><h2>{esc(ds_name)}</h2>']
        charts = []
        if metrics and f_final["rf"].notna().any():
            charts.append(
                (
                    "metric against rf (one line per depth; mean and std over seeds)",
                    fig_metric_vs(f_final, "rf", "depth", metrics, "metric against rf"),
                )
            )
            charts.append(("rf x depth", fig_heatmap(f_final, metrics)))
            charts.append(
                (
                    "same rf, varying depth (rf-equivalent stacks)",
                    fig_metric_vs(f_final, "depth", "rf", metrics, "same rf, varying depth"),
                )
            )
            if f_final["head"].nunique() > 1:
                charts.append(("image head vs patch head", fig_heads(f_final, metrics)))
        charts.append(("theoretical rf, decision rf, ERF", fig_erf(f_final)))
        if metrics:
            charts.append(("training curves", fig_curves(f_all, available_metrics(f_all))))
        charts.append(("time per epoch", fig_time(f_final)))
        for title, fig in charts:
            div_id = f"fig{len(figs)}"
            figs.append((div_id, fig))
            parts.append(f'<div class="chart" id="{div_id}" data-title="{esc(title)}"></div>')
        parts.append("<h3>gallery: latest samples and ERF map per trial</h3>")
        parts.append(gallery(f_final, ds_name))
        parts.append("</section>")
        sections.append("".join(parts))
    select = "".join(f'<option value="{esc(d)}">{esc(d)}</option>' for d in datasets)
    specs = {div_id: json.loads(fig.to_json()) for div_id, fig in figs}
    page = PAGE.format(
        plotly=get_plotlyjs(),
        body="".join(body),
        select=select,
        sections="".join(sections),
        specs=json.dumps(specs).replace("</", "<\\/"),
        n_trials=len(final),
        n_exps=final["experiment_name"].nunique(),
    )
    return page, "\n".join(md) + "\n"


def write_report(paths: list[str | Path], out: str | Path) -> Path:
    """Load ``paths`` and write ``out`` (HTML) and its ``.md`` twin; returns the HTML path."""
    return write_page(load_experiment(*paths), out)


def write_page(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write the page for an already loaded ``frame`` (and its ``.md`` twin)."""
    page, md = build(frame)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out, page), (out.with_suffix(".md"), md)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return out


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gan_rf report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }}
.tbl {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }}
.tbl th, .tbl td {{ border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left; }}
pre {{ background: #f6f6f6; padding: 0.5em; font-size: 0.8em; overflow-x: auto; }}
.chart {{ width: 100%; height: 460px; margin: 1em 0; }}
.gallery {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.card {{ margin: 0; border: 1px solid #ddd; padding: 4px; font-size: 0.75em; width: 330px; }}
.card img, .noimg {{ width: 160px; height: 160px; image-rendering: pixelated; display: inline-block; }}
.noimg {{ background: #eee; text-align: center; line-height: 160px; color: #999; }}
</style>
<script>{plotly}</script>
</head><body>
<h1>gan_rf: discriminator receptive field and what the generator learns</h1>
<p>{n_exps} experiment(s), {n_trials} trial(s). Diverged and errored trials are listed in the tables
and left out of means.</p>
{body}
<p><label>dataset <select id="dataset">{select}</select></label></p>
{sections}
<script>
const SPECS = {specs};
function showDataset(name) {{
  document.querySelectorAll("section.dataset").forEach(s => {{
    const on = s.dataset.dataset === name;
    s.style.display = on ? "" : "none";
    if (on) s.querySelectorAll(".chart").forEach(c => Plotly.Plots.resize(c));
  }});
}}
for (const [id, spec] of Object.entries(SPECS)) {{
  Plotly.newPlot(id, spec.data, spec.layout, {{responsive: true}}).then(() => {{
    document.getElementById(id).dataset.rendered = "1";
  }});
}}
const sel = document.getElementById("dataset");
sel.addEventListener("change", () => showDataset(sel.value));
showDataset(sel.value);
document.querySelectorAll("select[data-filter]").forEach(s => s.addEventListener("change", () => {{
  const section = s.dataset.section;
  const f = {{}};
  document.querySelectorAll(`select[data-section="${{CSS.escape(section)}}"]`).forEach(x => f[x.dataset.filter] = x.value);
  document.querySelectorAll(`#gallery-${{CSS.escape(section)}} .card`).forEach(c => {{
    c.style.display = (!f.rf || c.dataset.rf === f.rf) && (!f.depth || c.dataset.depth === f.depth) ? "" : "none";
  }});
}}));
</script>
</body></html>
"""
