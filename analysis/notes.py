"""The experiment report the notes ask for: per experiment, the network model, the
hyper-parameters held fixed and the final result, in the notes' table shape (rf size | epochs |
noise_dim | time per epoch | result | notes) with n and 95% intervals over seeds."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.api.types import is_bool, is_number, is_scalar

from analysis.figures import esc
from analysis.load import TRIAL_STATUSES
from analysis.stats import LAX, STRICT, configurations, fmt, mean_interval, plus_minus
from ganrf import runs
from ganrf.config import not_in_force


def notes_table(final: pd.DataFrame, raw: bool = False) -> pd.DataFrame:
    """The notes' table (rf size | epochs | noise_dim | time per epoch | result | notes),
    extended with metrics: one row per configuration, n seeds, means with their 95% interval
    (``raw``: the means alone, as numbers, which the page sorts by).

    ``result`` is each verdict level as the seeds that passed it ("success 0 of 2, recognisable
    1 of 2"); "diverged", "errored" or "timed out" when no trial of the configuration gave a
    result. The notes column says what the judges found (:func:`judged_note`), never the
    evaluator's argmax, which names a class for every blob."""
    cf = configurations(final)
    rows = []
    for _, g in cf.final.sort_values(["rf", "depth", "head", "seed"]).groupby("cfg", sort=False):
        r = g.iloc[0]
        cfg = json.loads(r.get("config") or "{}")
        ok = g[g["trial_status"].isin(("finished", "running"))]
        if ok.empty:
            worst = g["trial_status"].iloc[0]
            result = {"timed_out": "timed out"}.get(worst, worst)
        else:
            result = verdict_counts(ok) or "?"
        notes = []
        for _, d in g[g["trial_status"] == "diverged"].iterrows():
            if pd.notna(d.get("diverged_step")):
                notes.append(
                    f"seed {fmt(d['seed'])}: non-finite loss at step {int(d['diverged_step'])}"
                )
        if "metric/recognisable_share" in ok and ok["metric/recognisable_share"].notna().any():
            notes.append(judged_note(ok))
        rows.append(
            {
                "rf size": r["rf"] if raw else f"{fmt(r['rf'])}x{fmt(r['rf'])}",
                "depth": r.get("depth"),
                "layers": r.get("layers"),
                "head": r.get("head"),
                "epochs": round(float(g["epoch"].max()), 2) if g["epoch"].notna().any() else None,
                "noise_dim": cfg.get("g.noise_dim"),
                "time per epoch (s)": _mean_pm(ok, "time/epoch_s", 3, raw=raw),
                "result": result,
                "notes": "; ".join(notes),
                "n": len(ok),
                "fid": _mean_pm(ok, "metric/fid", raw=raw),
                "fid floor": _mean_pm(ok, "metric/fid_floor", raw=raw),
                "classifier score": _mean_pm(ok, "metric/classifier_score", raw=raw),
                "conv ERF 95% (px)": _mean_pm(ok, "erf/conv_size95", 3, raw=raw),
                "decision rf": r.get("decision_rf"),
            }
        )
    return pd.DataFrame(rows)


def _mean_pm(rows: pd.DataFrame, col: str, digits: int = 4, raw: bool = False) -> str | float:
    """ "mean ± half-width of its 95% interval" over ``rows`` (the mean alone for one seed;
    ``raw``: the mean as a number)."""
    if col not in rows or rows[col].isna().all():
        return math.nan if raw else ""
    _, mean, half = mean_interval(rows[col])
    return mean if raw else plus_minus(mean, half, digits)


DIGIT_CLASSES = 10
LEVELS = ((STRICT, "success"), (LAX, "recognisable"))


def verdict_counts(rows: pd.DataFrame) -> str:
    """Each verdict level the trials were judged at, as the seeds that passed it: "success 0 of
    2, recognisable 1 of 2" ("" where none was judged)."""
    out = []
    for col, word in LEVELS:
        v = rows[col].dropna() if col in rows else pd.Series(dtype=float)
        if len(v):
            out.append(f"{word} {int((v == 1).sum())} of {len(v)}")
    return ", ".join(out)


def judged_note(rows: pd.DataFrame) -> str:
    """What the recognisability judges found, by seed: "judges call 25%, 27% of samples digits,
    covering 9, 9 of the 10 classes" (classes among the recognised samples only)."""
    rows = rows[rows["metric/recognisable_share"].notna()].sort_values("seed")
    shares = ", ".join(f"{s:.0%}" for s in rows["metric/recognisable_share"])
    text = f"judges call {shares} of samples digits"
    if "metric/recognisable_classes" in rows and rows["metric/recognisable_classes"].notna().any():
        classes = ", ".join(fmt(c) for c in rows["metric/recognisable_classes"])
        text += f", covering {classes} of the {DIGIT_CLASSES} classes"
    return text + (" (by seed)" if len(rows) > 1 else "")


def hyperparameters(final: pd.DataFrame) -> dict[str, Any]:
    """Config keys shared by every trial of the experiment (what was held fixed), but those
    not in force, as ``--dry-run`` lists them (an epoch count a step count replaced; a CUDA-only
    key in trials that ran on the CPU)."""
    cfgs = [json.loads(c) for c in final["config"].dropna()]
    if not cfgs:
        return {}
    shared = {
        k: v
        for k, v in cfgs[0].items()
        if all(c.get(k) == v for c in cfgs) and not k.startswith("meta.")
    }
    cuda = str(shared.get("device", "cuda")).startswith(("cuda", "auto"))
    hidden = set(not_in_force(shared, cuda))
    return dict(sorted((k, v) for k, v in shared.items() if k not in hidden))


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


def _text(value: Any) -> str:
    return "" if is_scalar(value) and pd.isna(value) else fmt(value)


def table_html(df: pd.DataFrame, sortable: bool = False, values: pd.DataFrame | None = None) -> str:
    """``df`` as an HTML table; with ``values`` (same rows, some of the columns), each cell whose
    value there is a number carries it in full as ``data-v``, which a header click sorts by (the
    shown text is rounded: 120.467 and 120.489 both read "120.5")."""
    classes = "tbl sortable" if sortable else "tbl"
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = []
    for i in range(len(df)):
        cells = []
        for c in df.columns:
            v = values[c].iloc[i] if values is not None and c in values else None
            number = is_number(v) and not is_bool(v) and math.isfinite(v)
            attr = f' data-v="{float(v)!r}"' if number else ""
            cells.append(f"<td{attr}>{esc(_text(df[c].iloc[i]))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (  # a wide table scrolls sideways inside the page, which keeps its width
        f'<div class="wide"><table class="{classes}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


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
        body.append(table_html(table, sortable=True, values=notes_table(exp, raw=True)))
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
