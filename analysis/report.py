"""One self-contained interactive page (and a Markdown twin) comparing rf effects per dataset.

    python -m analysis runs/NAME [runs/OTHER ...] -o report.html

The page opens with a warning when its trials ran the smoke preset, the findings (the notes'
four questions answered, each with every compared configuration's latest sample grids beside
it: :mod:`analysis.samples`), a summary table and the experiment report the notes ask for
(network model, hyper-parameters, final result per experiment), then, per dataset, plotly charts whose metric is switched with a
dropdown: metric against rf (one line per depth, mean and spread over seeds), an rf x depth
heatmap, metric against depth (one line per rf: the rf-equivalent question), image vs patch head,
theoretical and decision rf against the measured ERF, training curves, time per epoch, and a
gallery of each trial's latest samples and ERF map filterable by rf and depth. plotly.js is
embedded once; images are embedded as small JPEG thumbnails, so the file opens offline.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import figures as F
from analysis.control import banner as control_banner
from analysis.figures import esc
from analysis.findings import answered
from analysis.gallery import Images, gallery
from analysis.load import TRIAL_STATUSES, final_rows, load_experiment
from analysis.notes import experiment_report, table_html
from analysis.page import render
from analysis.samples import by_rf_html, control_findings, findings_html, real_html
from analysis.stats import (
    Configs,
    configurations,
    fmt,
    headline,
    summary_display,
    summary_table,
)
from ganrf.metrics.spec import DIGITS
from ganrf.storage import atomic_path


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


def _variants(build, metrics: list[str], splits: list[tuple[str, str]]) -> dict:
    """{metric: {split: figure}}, each figure a plain dict from one of ``figures``' specs."""
    return {m: {key: build(m, key) for key, _ in splits} for m in metrics}


def section_charts(frame: pd.DataFrame, cf: Configs, sec: str) -> list[dict]:
    """The charts of one dataset: each with its variants per metric and split."""
    metrics = F.available_metrics(cf.final)
    charts: list[dict] = []

    def add(
        title,
        build,
        metrics,
        splits,
        split_label="split by",
        default="",
        recolour=False,
        slices=False,
    ):
        charts.append(
            {
                "title": title,
                "section": sec,
                "variants": build(metrics)
                if recolour
                else _variants(build, metrics or [""], splits or [("", "")]),
                "metrics": [(m, F.label(m)) for m in metrics],
                "splits": splits,
                "split_label": split_label,
                "metric": (metrics or [""])[0],
                "split": default,
                "recolour": recolour,
                "slices": slices,  # its splits are slices: follow the filters
            }
        )

    varies = set(cf.fields)
    if metrics and cf.final["rf"].notna().any():
        add(
            "metric against rf (mean and 95% interval over seeds, per configuration)",
            lambda m, s: F.spec_metric_vs(cf, "rf", m, s),
            metrics,
            F.split_options(cf, "rf"),
        )
        if {"rf", "depth"} <= varies:
            add(
                "rf x depth",
                lambda m, s: F.spec_heatmap(cf, m, s),
                metrics,
                F.heatmap_slices(cf),
                "slice",
                F.heatmap_slices(cf)[0][0],
                slices=True,
            )
        if "depth" in varies:
            add(
                "same rf, varying depth",
                lambda m, s: F.spec_metric_vs(cf, "depth", m, s),
                metrics,
                F.split_options(cf, "depth"),
            )
    if metrics and cf.fields:
        splits = F.split_options(cf)
        default = "head" if "head" in varies else ""
        title = "image head vs patch head" if "head" in varies else "configurations side by side"
        add(title, lambda m, s: F.spec_bars(cf, m, s, title), metrics, splits, default=default)
        add("parallel coordinates", lambda m, s: F.spec_parcoords(cf, m), metrics, [])
    add("theoretical rf, decision rf, ERF", lambda m, s: F.spec_erf(cf), [], [])
    add("ERF as a share of the rf, by depth", lambda m, s: F.spec_erf_share(cf), [], [])
    curve_metrics = F.available_metrics(frame)
    if curve_metrics:
        add(
            "training curves",
            lambda ms: F.curve_variants(frame, cf, ms),
            curve_metrics,
            F.split_options(cf),
            "colour by",
            recolour=True,
        )
    add("time per epoch", lambda m, s: F.spec_time(cf, s), [], F.split_options(cf, "rf"))
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


SMOKE_PRESET = "smoke"
# What a smoke preset trains on, per dataset (sweeps/*.py): the banner says which.
SMOKE_DATA = {"synthetic": "synthetic data", "photo": "a few hundred crops of a real photograph"}


def smoke_banner(final: pd.DataFrame) -> str:
    """The warning a page of smoke-preset trials opens with ("" when none is): their numbers
    check that the code runs, not what an rf does."""
    if "preset" not in final:
        return ""
    rows = final[final["preset"] == SMOKE_PRESET]
    smoke = sorted(rows["experiment_name"].dropna().unique())
    if not smoke:
        return ""
    datasets = sorted(rows["dataset"].dropna().unique()) if "dataset" in rows else []
    data = ", ".join(SMOKE_DATA.get(d, f"a few {d} images") for d in datasets) or "tiny data"
    return (
        f"Smoke preset ({', '.join(smoke)}): {data}, tiny models, a few training steps. "
        "It checks that the sweep runs end to end; its metrics, findings and samples say nothing "
        "about receptive fields. Run the laptop or full preset for numbers that mean something."
    )


def build(frame: pd.DataFrame) -> tuple[str, str]:
    """(html, markdown) of the whole report."""
    final = final_rows(frame)
    summary = summary_table(configurations(final, prefix="all"))
    shown = summary_display(summary)
    running = final[final["trial_status"] == "running"]["trial"].tolist()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    smoke, control_lines = smoke_banner(final), control_banner(final)
    images = Images()  # every image of the page, each embedded once
    # The notes' questions are MNIST's (their verdicts are digit judges'): other datasets' trials
    # are shown by rf instead (by_rf_html), never counted as not speaking to a question.
    digits = final[final["dataset"].isin(DIGITS)] if "dataset" in final else final
    answers = answered(digits) if len(digits) else []
    header = _banners_html(final, stamp, running, smoke, control_lines)
    header.append(findings_html(answers, images, control_findings(final), real_html(final, images)))
    header.append(by_rf_html(final, images))
    header.append("<h2>Summary: one row per configuration</h2>")
    header.append(table_html(shown, sortable=True, values=summary))
    body, md_exps = experiment_report(final)
    md = _markdown_head(stamp, smoke, control_lines, running, answers)
    md += ["## Summary: one row per configuration", "", shown.to_markdown(index=False), ""]
    md += md_exps
    datasets = sorted(final["dataset"].dropna().unique())
    charts: dict[str, dict] = {}
    sections, data_sections = [], {}
    for i, ds_name in enumerate(datasets):
        html, data_sections[f"s{i}"] = _dataset_section(
            f"s{i}", ds_name, frame, final, images, charts
        )
        sections.append(html)
    select = "".join(f'<option value="{esc(d)}">{esc(d)}</option>' for d in datasets)
    data = {
        "sections": data_sections,
        "images": images.urls,
        "charts": {
            k: {x: c[x] for x in ("section", "variants", "metric", "split", "recolour", "slices")}
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


def _banners_html(
    final: pd.DataFrame,
    stamp: str,
    running: list[str],
    smoke: str,
    control_lines: list[tuple[bool, str]],
) -> list[str]:
    """The page's opening paragraphs: the smoke warning and the control's verdict on top, then
    what the page holds and how its means are made, then the trials still running."""
    header = [
        f"<p>{final['experiment_name'].nunique()} experiment(s), {len(final)} trial(s); "
        f"written {esc(stamp)}. Means are over the seeds of one configuration (every field "
        "that varies but the seed), with n and a 95% interval (t over seeds, cut to [0, 1] for "
        "a share; for a verdict, the Wilson interval of k of n seeds); diverged and errored trials "
        "are listed in the tables and left out of means.</p>"
    ]
    if running:
        header.append(
            f'<p class="running">{len(running)} trial(s) still running (this page is refreshed '
            f"while the sweep runs): {esc(', '.join(running))}</p>"
        )
    for passed, text in reversed(control_lines):  # on top, under the smoke warning
        cls = "control-pass" if passed else "control-fail"
        header.insert(0, f'<p class="control {cls}">{esc(text)}</p>')
    if smoke:
        header.insert(0, f'<p class="smoke">{esc(smoke)}</p>')
    return header


def _markdown_head(
    stamp: str,
    smoke: str,
    control_lines: list[tuple[bool, str]],
    running: list[str],
    answers: list,
) -> list[str]:
    """The Markdown twin's lines up to its summary: the banners and the findings."""
    md = ["# gan_rf report", "", f"Written {stamp}.", ""]
    if smoke:
        md += [f"**{smoke}**", ""]
    md += [f"**{text}**\n" for _, text in control_lines]
    if running:
        md += [f"Still running: {', '.join(running)}", ""]
    if answers:
        md += ["## Findings: the notes' four questions", ""]
    for title, found in answers:
        md += [f"### {title}", "", *(f"- {f.text}" for f in found), ""]
    return md


def _dataset_section(
    sec: str,
    ds_name: str,
    frame: pd.DataFrame,
    final: pd.DataFrame,
    images: Images,
    charts: dict[str, dict],
) -> tuple[str, dict]:
    """One dataset's section of the page, ``sec`` its id: filters, trial table, charts (added
    to ``charts``) and gallery, and the data its script filters them by."""
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
    data = {
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
    return "".join(parts), data


def write_report(paths: list[str | Path], out: str | Path) -> Path:
    """Load ``paths`` and write ``out`` (HTML) and its ``.md`` twin; returns the HTML path."""
    return write_page(load_experiment(*paths), out)


def write_page(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write the page for an already loaded ``frame`` (and its ``.md`` twin)."""
    page, md = build(frame)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out, page), (out.with_suffix(".md"), md)):
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return out
