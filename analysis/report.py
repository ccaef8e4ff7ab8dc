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

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import figures as F
from analysis.figures import esc
from analysis.gallery import Images, gallery
from analysis.load import TRIAL_STATUSES, final_rows, load_experiment
from analysis.page import render
from analysis.stats import (
    Configs,
    configurations,
    fmt,
    headline,
    summary_display,
    summary_table,
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


def _table_html(df: pd.DataFrame, sortable: bool = False) -> str:
    classes = "tbl sortable" if sortable else "tbl"
    return df.to_html(index=False, escape=True, na_rep="", classes=classes, border=0)


def experiment_report(final: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(HTML, Markdown lines) of the notes' report per experiment: the table, the
    hyper-parameters held fixed, G's and each D's layer table."""
    body, md = ["<h2>Experiment report</h2>"], []
    for name, exp in final.groupby("experiment_name"):
        g, ds = architectures(exp)
        table = notes_table(exp)
        counts = exp["trial_status"].value_counts().to_dict()
        status_line = ", ".join(f"{counts.get(s, 0)} {s}" for s in TRIAL_STATUSES)
        dataset = exp["dataset"].iloc[0]
        body.append(f"<h3>{esc(name)} <small>({esc(dataset)}; {esc(status_line)})</small></h3>")
        body.append(_table_html(table, sortable=True))
        hp = hyperparameters(exp)
        body.append(
            "<details><summary>hyper-parameters held fixed</summary>"
            + _table_html(pd.DataFrame({"key": list(hp), "value": [str(v) for v in hp.values()]}))
            + "</details>"
        )
        arch = []
        if g:
            arch.append(
                f"<h4>generator: {esc(g['kind'])}, noise {esc(g['noise_dim'])}, width "
                f"{esc(g['width'])}, {esc(g['params'])} parameters</h4>"
                f"<pre>{esc(chr(10).join(g['layers']))}</pre>"
            )
        for d in ds:
            arch.append(
                f"<h4>discriminator {esc(d['layers'])} ({esc(d['head'])} head, norm "
                f"{esc(d['norm'])}, {esc(d['params'])} parameters)</h4><pre>{esc(d.get('table', ''))}</pre>"
            )
        body.append(
            "<details><summary>architectures (layer tables with rf)</summary>"
            + "".join(arch)
            + "</details>"
        )
        md += [f"## {name} ({dataset}; {status_line})", "", table.to_markdown(index=False), ""]
        md += ["Hyper-parameters held fixed:", ""] + [f"- `{k}`: {v}" for k, v in hp.items()]
        md += ["", "Architectures:", ""]
        if g:
            md += [
                f"Generator {g['kind']} (noise {g['noise_dim']}, width {g['width']}, "
                f"{g['params']} params):",
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
                d.get("table", ""),
                "```",
            ]
            md += [""]
    return body, md


def trial_table(configs: Configs) -> str:
    """The sortable trial table: key, status, every varying field, seed, epoch, headline
    metrics; rows carry their key, so the section's filters hide them."""
    final = configs.final.sort_values(["cfg", "seed"], na_position="last")
    metrics = headline(final)
    cols = ["trial", "status", *configs.fields, "seed", "epoch"]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    head += "".join(f"<th>{esc(F.label(m))}</th>" for m in metrics)
    rows = []
    for _, r in final.iterrows():
        values = [r["trial"], r["trial_status"], *[r[f] for f in configs.fields]]
        values += [r["seed"], r["epoch"], *[r[m] for m in metrics]]
        cells = "".join(f'<td data-v="{esc(fmt(v))}">{esc(_short(v))}</td>' for v in values)
        rows.append(f'<tr data-key="{esc(r["key"])}">{cells}</tr>')
    return (
        f'<div class="scroll"><table class="tbl sortable trials"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) and pd.notna(v) else fmt(v)


def _filters(configs: Configs, sec: str) -> str:
    def select(name: str, values) -> str:
        opts = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        return (
            f'<label>{esc(name)} <select data-filter="{esc(name)}" data-section="{sec}">'
            f'<option value="">all</option>{opts}</select></label>'
        )

    parts = [
        select(f, sorted({fmt(v) for v in configs.final[f]}, key=F._order_one))
        for f in configs.fields
    ]
    parts.append(
        select("status", [s for s in TRIAL_STATUSES if s in set(configs.final["trial_status"])])
    )
    return '<div class="filters">filter: ' + " ".join(parts) + "</div>"


def _variants(build, metrics: list[str], splits: list[tuple[str, str]], ys=False) -> dict:
    """{metric: {split: figure}}; with ``ys`` (the training curves: the same traces for every
    metric) only the first metric has whole figures, the others their y values and layout."""
    out = {}
    for m in metrics:
        out[m] = {}
        for key, _ in splits:
            spec = json.loads(build(m, key).to_json())
            spec["layout"].pop("template", None)
            if ys and m != metrics[0]:
                spec = {"ys": [t.get("y") for t in spec["data"]], "layout": spec["layout"]}
            out[m][key] = spec
    return out


def section_charts(frame: pd.DataFrame, cf: Configs, sec: str) -> list[dict]:
    """The charts of one dataset: each with its variants per metric and split."""
    metrics = F.available_metrics(cf.final)
    charts: list[dict] = []

    def add(title, build, metrics, splits, split_label="split by", default="", recolour=False):
        charts.append(
            {
                "title": title,
                "section": sec,
                "variants": _variants(
                    build,
                    metrics or [""],
                    [("", "")] if recolour or not splits else splits,
                    ys=recolour,
                ),
                "metrics": [(m, F.label(m)) for m in metrics],
                "splits": splits,
                "split_label": split_label,
                "metric": (metrics or [""])[0],
                "split": default,
                "recolour": recolour,
            }
        )

    varies = set(cf.fields)
    if metrics and cf.final["rf"].notna().any():
        add(
            "metric against rf (mean and 95% interval over seeds, per configuration)",
            lambda m, s: F.fig_metric_vs(cf, "rf", m, s),
            metrics,
            F.split_options(cf, "rf"),
        )
        if {"rf", "depth"} <= varies:
            add(
                "rf x depth",
                lambda m, s: F.fig_heatmap(cf, m, s),
                metrics,
                F.heatmap_slices(cf),
                "slice",
                F.heatmap_slices(cf)[0][0],
            )
        if "depth" in varies:
            add(
                "same rf, varying depth",
                lambda m, s: F.fig_metric_vs(cf, "depth", m, s),
                metrics,
                F.split_options(cf, "depth"),
            )
    if metrics and cf.fields:
        splits = F.split_options(cf)
        default = "head" if "head" in varies else ""
        title = "image head vs patch head" if "head" in varies else "configurations side by side"
        add(title, lambda m, s: F.fig_bars(cf, m, s, title), metrics, splits, default=default)
        add("parallel coordinates", lambda m, s: F.fig_parcoords(cf, m), metrics, [])
    add("theoretical rf, decision rf, ERF", lambda m, s: F.fig_erf(cf), [], [])
    curve_metrics = F.available_metrics(frame)
    if curve_metrics:
        add(
            "training curves",
            lambda m, s: F.fig_curves(frame, cf, m),
            curve_metrics,
            F.split_options(cf),
            "colour by",
            recolour=True,
        )
    add("time per epoch", lambda m, s: F.fig_time(cf, s), [], F.split_options(cf, "rf"))
    return charts


def _chart_html(div_id: str, c: dict) -> str:
    def select(cls, label, options, value):
        if len(options) < 2:
            return ""
        opts = "".join(
            f'<option value="{esc(k)}"{" selected" if k == value else ""}>{esc(v)}</option>'
            for k, v in options
        )
        return f'<label>{esc(label)} <select class="{cls}">{opts}</select></label> '

    controls = select("metric", "metric", c["metrics"], c["metric"])
    controls += select("split", c["split_label"], c["splits"], c["split"])
    return (
        f'<div class="chartbox"><div class="controls"><b>{esc(c["title"])}</b> {controls}</div>'
        f'<div class="chart" id="{div_id}" data-title="{esc(c["title"])}"></div></div>'
    )


def build(frame: pd.DataFrame) -> tuple[str, str]:
    """(html, markdown) of the whole report."""
    final = final_rows(frame)
    everything = configurations(final, prefix="all")
    summary = summary_table(everything)
    shown = summary_display(summary)
    running = final[final["trial_status"] == "running"]["trial"].tolist()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    header = [
        f"<p>{final['experiment_name'].nunique()} experiment(s), {len(final)} trial(s); "
        f"written {esc(stamp)}. Means are over the seeds of one configuration (every field "
        "that varies but the seed), with n and a 95% t interval; diverged and errored trials "
        "are listed in the tables and left out of means.</p>"
    ]
    if running:
        header.append(
            f'<p class="running">{len(running)} trial(s) still running (this page is refreshed '
            f"while the sweep runs): {esc(', '.join(running))}</p>"
        )
    header.append("<h2>Summary: one row per configuration</h2>")
    header.append(_table_html(shown, sortable=True))
    md = ["# gan_rf report", "", f"Written {stamp}.", ""]
    if running:
        md += [f"Still running: {', '.join(running)}", ""]
    md += ["## Summary: one row per configuration", "", shown.to_markdown(index=False), ""]
    body, md_exps = experiment_report(final)
    md += md_exps
    datasets = sorted(final["dataset"].dropna().unique())
    charts: dict[str, dict] = {}
    sections, data_sections = [], {}
    images = Images()
    for i, ds_name in enumerate(datasets):
        sec = f"s{i}"
        f_all = frame[frame["dataset"] == ds_name]
        cf = configurations(final[final["dataset"] == ds_name], prefix=sec)
        parts = [
            f'<section class="dataset" data-dataset="{esc(ds_name)}" data-section="{sec}">'
            f"<h2>{esc(ds_name)}</h2>",
            _filters(cf, sec),
            "<h3>trials (click a header to sort; the filters above apply to every chart)</h3>",
            trial_table(cf),
        ]
        for c in section_charts(f_all, cf, sec):
            div_id = f"fig{len(charts)}"
            charts[div_id] = c
            parts.append(_chart_html(div_id, c))
        cards, slider = gallery(f_all, cf, images)
        parts += ["<h3>gallery: samples and ERF map per trial, over training</h3>", cards]
        parts.append("</section>")
        sections.append("".join(parts))
        data_sections[sec] = {
            "fields": cf.fields,
            "trials": {
                r["key"]: {
                    "cfg": cf.key(r["cfg"]),
                    "status": r["trial_status"],
                    "f": {f: fmt(r[f]) for f in cf.fields},
                }
                for _, r in cf.final.iterrows()
            },
            "gallery": slider,
        }
    select = "".join(f'<option value="{esc(d)}">{esc(d)}</option>' for d in datasets)
    data = {
        "sections": data_sections,
        "images": images.urls,
        "charts": {
            k: {x: c[x] for x in ("section", "variants", "metric", "split", "recolour")}
            for k, c in charts.items()
        },
    }
    page = render(
        header="".join(header),
        body="".join(body),
        select=select,
        sections="".join(sections),
        data=data,
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
