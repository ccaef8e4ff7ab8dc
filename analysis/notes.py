"""The experiment report the notes ask for: per experiment, the network model, the
hyper-parameters held fixed and the final result, in the notes' table shape (rf size | epochs |
noise_dim | time per epoch | result | notes) with n and 95% intervals over seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.figures import esc
from analysis.load import TRIAL_STATUSES
from analysis.stats import configurations, fmt, mean_interval, plus_minus
from ganrf import runs


def notes_table(final: pd.DataFrame) -> pd.DataFrame:
    """The notes' table (rf size | epochs | noise_dim | time per epoch | result | notes),
    extended with metrics: one row per configuration, n seeds, means with their 95% interval.

    ``result`` is the verdict: "yes"/"no" for one seed, "yes in k of n" for several; "diverged",
    "errored" or "timed out" when no trial of the configuration gave a result."""
    cf = configurations(final)
    rows = []
    for _, g in cf.final.sort_values(["rf", "depth", "head", "seed"]).groupby("cfg", sort=False):
        r = g.iloc[0]
        cfg = json.loads(r.get("config") or "{}")
        ok = g[g["trial_status"].isin(("finished", "running"))]
        verdicts = ok["metric/success"].dropna() if "metric/success" in ok else pd.Series()
        if ok.empty:
            worst = g["trial_status"].iloc[0]
            result = {"timed_out": "timed out"}.get(worst, worst)
        elif verdicts.empty:
            result = "?"
        elif len(verdicts) == 1:
            result = "yes" if verdicts.iloc[0] == 1 else "no"
        else:
            result = f"yes in {int(verdicts.sum())} of {len(verdicts)}"
        notes = []
        for _, d in g[g["trial_status"] == "diverged"].iterrows():
            if pd.notna(d.get("diverged_step")):
                notes.append(
                    f"seed {fmt(d['seed'])}: non-finite loss at step {int(d['diverged_step'])}"
                )
        if "metric/class_count" in ok and ok["metric/class_count"].notna().any():
            notes.append(
                f"{fmt(ok['metric/class_count'].min())}-{fmt(ok['metric/class_count'].max())} classes"
            )
        rows.append(
            {
                "rf size": f"{fmt(r['rf'])}x{fmt(r['rf'])}",
                "depth": r.get("depth"),
                "layers": r.get("layers"),
                "head": r.get("head"),
                "epochs": round(float(g["epoch"].max()), 2) if g["epoch"].notna().any() else None,
                "noise_dim": cfg.get("g.noise_dim"),
                "time per epoch (s)": _mean_pm(ok, "time/epoch_s", 3),
                "result": result,
                "notes": "; ".join(notes),
                "n": len(ok),
                "fid": _mean_pm(ok, "metric/fid"),
                "fid floor": _mean_pm(ok, "metric/fid_floor"),
                "classifier score": _mean_pm(ok, "metric/classifier_score"),
                "conv ERF 95% (px)": _mean_pm(ok, "erf/conv_size95", 3),
                "decision rf": r.get("decision_rf"),
            }
        )
    return pd.DataFrame(rows)


def _mean_pm(rows: pd.DataFrame, col: str, digits: int = 4) -> str:
    """ "mean ± half-width of its 95% interval" over ``rows`` (the mean alone for one seed)."""
    if col not in rows or rows[col].isna().all():
        return ""
    _, mean, half = mean_interval(rows[col])
    return plus_minus(mean, half, digits)


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
        info = runs.read_design(Path(r.get("trial_dir", "")))
        if info is None:
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


def table_html(df: pd.DataFrame, sortable: bool = False) -> str:
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
        body.append(table_html(table, sortable=True))
        hp = hyperparameters(exp)
        body.append(
            "<details><summary>hyper-parameters held fixed</summary>"
            + table_html(pd.DataFrame({"key": list(hp), "value": [str(v) for v in hp.values()]}))
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
