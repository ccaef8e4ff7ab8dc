"""The rf x depth heatmap of one slice (the fields other than rf and depth held at one value).

A heatmap's colour claims a difference, and two seeds' means differ by noise: so a cell is
coloured only where its 95% interval over seeds (:func:`analysis.stats.metric_interval`) excludes the *reference*, the slice's mean of
its cells' means (each configuration weighed once). A cell whose interval includes the
reference, or that has one seed (no interval), is grey. Every cell shows its mean and interval
and n as text; the rule is the chart's subtitle and each cell's hover says which side it falls.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from analysis.figures.base import SPELLING, _groups, _layout, _record_groups, esc, label
from analysis.figures.means import _summary, interval_text
from analysis.stats import Configs, fmt, interval_str

MUTED = "#e4e4e4"  # the cells whose difference from the reference is within noise


def heatmap_slices(configs: Configs) -> list[tuple[str, str]]:
    """The heatmap's slices: one per combination of the fields other than rf and depth."""
    rest = [f for f in configs.fields if f not in ("rf", "depth", *SPELLING)]
    return [(name, name or "all trials") for name, _ in _groups(configs.final, rest)]


def differs(cell: dict, reference: float) -> bool:
    """Whether a cell's 95% interval over seeds excludes ``reference`` (False for one seed)."""
    return cell["n"] >= 2 and not cell["lo"] <= reference <= cell["hi"]


def _cell_hover(c: dict, metric: str, reference: float) -> str:
    seeds = ", ".join(f"{d['value']:.4g}" for d in c["seeds"])
    if differs(c, reference):
        verdict = f"coloured: the interval excludes the reference {reference:.4g}"
    elif c["n"] < 2:
        verdict = "grey: one seed, no interval"
    else:
        verdict = f"grey: the interval includes the reference {reference:.4g}"
    return "<br>".join(
        [
            f"rf {esc(fmt(c['rf']))}, depth {esc(fmt(c['depth']))}",
            f"{esc(label(metric))}: {interval_str(c['mean'], c['lo'], c['hi'], c['half'])}",
            interval_text(c["lo"], c["hi"], c["how"]),
            f"seeds: {seeds}",
            verdict,
        ]
    )


def spec_heatmap(configs: Configs, metric: str, slice_name: str = "") -> dict:
    """rf x depth means of one slice: two heatmap traces over the same grid, the cells that
    differ from the reference coloured by their mean, the others grey."""
    rest = [f for f in configs.fields if f not in ("rf", "depth", *SPELLING)]
    s = _summary(configs, metric, None)
    rows = dict(_record_groups(s, rest)).get(slice_name, [])
    cells: dict[tuple, dict] = {}
    for r in rows:
        if not any(pd.isna(r[c]) for c in ("depth", "rf", "mean")):  # the first, as pivot_table
            cells.setdefault((r["depth"], r["rf"]), r)
    depths = sorted({d for d, _ in cells})
    rfs = sorted({r for _, r in cells})
    means = [float(c["mean"]) for c in cells.values()]
    reference = sum(means) / len(means) if means else math.nan
    grid = [[cells.get((d, r)) for r in rfs] for d in depths]

    def layer(keep) -> list[list]:
        return [[keep(c) if c else None for c in row] for row in grid]

    z = layer(lambda c: float(c["mean"]) if differs(c, reference) else None)
    muted = layer(lambda c: None if differs(c, reference) else 0)
    text = layer(
        lambda c: f"{interval_str(c['mean'], c['lo'], c['hi'], c['half'], 3)}<br>n={c['n']}"
    )
    keys = layer(lambda c: c["page_key"])  # the page's filters blank the cells they exclude
    hover = layer(lambda c: _cell_hover(c, metric, reference))
    mean = layer(lambda c: float(c["mean"]))  # every cell's mean, coloured or not
    title = f"rf x depth: {label(metric)}" + (f" ({esc(slice_name)})" if slice_name else "")
    title += (
        f"<br><sup>coloured only where the 95% t interval over seeds excludes the reference "
        f"{reference:.4g} (the slice's mean of cells); grey: includes it, or one seed</sup>"
    )
    layout = _layout(title, "rf", "depth")
    layout["xaxis"]["type"] = "category"
    layout["yaxis"]["type"] = "category"
    layout["margin"] = {"t": 80}
    common = {
        "type": "heatmap",
        "x": [fmt(c) for c in rfs],
        "y": [fmt(i) for i in depths],
        "text": text,
        "customdata": mean,
        "texttemplate": "%{text}",
        "hovertext": hover,
        "hoverinfo": "text",
        "hoverongaps": False,
        "xgap": 1,
        "ygap": 1,
    }
    grey = {
        **common,
        "z": muted,
        "name": "within noise",
        "colorscale": [[0, MUTED], [1, MUTED]],
        "showscale": False,
        "meta": {"role": "muted", "keys": keys},
    }
    coloured = {
        **common,
        "z": z,
        "name": "differs from the reference",
        "colorscale": "Viridis",
        "zmin": min(means, default=0),
        "zmax": max(means, default=1),
        "showscale": any(v is not None for row in z for v in row),
        "colorbar": {"title": {"text": ""}},
        "meta": {"role": "coloured", "keys": keys},
    }
    return {"data": [grey, coloured], "layout": layout}


def fig_heatmap(configs: Configs, metric: str, slice_name: str = "") -> go.Figure:
    return go.Figure(spec_heatmap(configs, metric, slice_name))
