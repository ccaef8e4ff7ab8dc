"""The page's charts: plotly figures over the configurations of :mod:`analysis.stats`.

Each chart is built as a plain JSON-ready dict (``spec_*``: ``{"data": [...], "layout": {...}}``),
which the page embeds as is: building a ``go.Figure`` validates every property, and a page has
hundreds of metric x split variants. ``fig_*`` wraps a spec in a ``go.Figure`` (validated) for
callers and tests that want one.

Every mean is over the seeds of one configuration (every varying field but the seed), with n and
its 95% interval on hover; nothing is pooled across experiments, heads or any other field. Each
``fig_*`` draws one metric and one *split* (the field whose values become the traces; ``""``:
every varying field, one trace per configuration); the page offers the others in its controls.
Points carry their page key in ``customdata`` (per-trial traces in ``meta``), which the page's
filters match.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from analysis.stats import Configs, fmt, plus_minus
from ganrf.metrics.spec import METRICS, chartable

CHART_METRICS = [m.key for m in chartable()]
EVERY_FIELD = ""  # the split "every varying field": one trace per configuration
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
INTEGER_AXES = ("rf", "depth", "decision_rf")


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def label(metric: str) -> str:
    return METRICS[metric].axis_title if metric in METRICS else metric


def available_metrics(frame: pd.DataFrame) -> list[str]:
    return [m for m in CHART_METRICS if m in frame.columns and frame[m].notna().any()]


def split_options(configs: Configs, *exclude: str) -> list[tuple[str, str]]:
    """(split key, what the control calls it): every field together, then each field."""
    fields = [f for f in configs.fields if f not in exclude]
    if not fields:
        return [(EVERY_FIELD, "nothing else varies")]
    return [(EVERY_FIELD, "every varying field"), *[(f, f) for f in fields]]


# The design spelled out: it changes with rf and depth, so a line over rf does not split on it.
SPELLING = ("layers", "channels", "decision_rf")


def _split_fields(configs: Configs, split: str, *exclude: str) -> list[str]:
    """The fields whose values make the traces; along an rf or depth axis, every field but the
    axis and the layer spelling that follows it."""
    if split == EVERY_FIELD:
        skip = set(exclude) | (set(SPELLING) if set(exclude) & {"rf", "depth"} else set())
        return [f for f in configs.fields if f not in skip]
    return [split]


def _groups(df: pd.DataFrame, fields: list[str]):
    """(label, rows) per combination of ``fields``' values, in numeric-aware order."""
    if not fields:
        yield "", df
        return
    for name, idx in _grouped(zip(*(df[f].map(fmt) for f in fields)), fields):
        yield name, df.iloc[idx]


def _grouped(keys, fields: list[str]) -> list[tuple[str, list[int]]]:
    """(label, positions) per distinct key of ``keys`` (tuples of ``fields``' shown values)."""
    rows: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    return [
        (" · ".join(f"{f}={v}" for f, v in zip(fields, key)), rows[key])
        for key in sorted(rows, key=_order)
    ]


def _record_groups(records: list[dict], fields: list[str]) -> list[tuple[str, list[dict]]]:
    """``_groups`` over the records of :func:`_summary` (plain Python: no frame slicing)."""
    if not fields:
        return [("", records)]
    keys = (tuple(r["shown"][f] for f in fields) for r in records)
    return [(name, [records[i] for i in idx]) for name, idx in _grouped(keys, fields)]


def _order_one(value: str) -> tuple:
    return _order((value,))


def _order(key: tuple) -> tuple:
    return tuple((0, float(v), "") if _is_number(v) else (1, 0.0, v) for v in key)


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _js(values) -> list:
    """JSON-ready values: Python scalars, None where missing (the page's JSON has no NaN)."""
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def _cache(configs: Configs) -> dict:
    """Per-Configs memo of what every metric x split variant shares (hover texts, keys)."""
    return configs.__dict__.setdefault("_figure_cache", {})


def _hover(s: pd.DataFrame, x: str | None, metric: str) -> list[str]:
    out = []
    for r in s.to_dict("records"):
        parts = [esc(r["cfg_label"])]
        if x:
            parts.append(f"{esc(x)} {esc(fmt(r[x]))}")
        interval = "" if r["n"] < 2 else f" (95% interval {r['lo']:.4g} to {r['hi']:.4g})"
        parts.append(f"{esc(label(metric))}: {plus_minus(r['mean'], r['half'])}{interval}")
        parts.append(f"n = {r['n']} seed{'s' if r['n'] != 1 else ''}")
        out.append("<br>".join(parts))
    return out


def _summary(configs: Configs, metric: str, x: str | None) -> list[dict]:
    """``configs.summary(metric)`` (the rows with an ``x``) as records, with each
    configuration's page key, hover text and fields as shown: computed once per metric and axis,
    shared by every split."""
    memo = _cache(configs)
    if (metric, x) not in memo:
        s = configs.summary(metric)
        if x:
            s = s[s[x].notna()] if x in s else s.iloc[0:0]
        records = s.to_dict("records")
        for r, hover in zip(records, _hover(s, x, metric)):
            r.update(page_key=configs.key(r["cfg"]), hover=hover)
            r["shown"] = {f: fmt(r[f]) for f in configs.fields}
        memo[(metric, x)] = records
    return memo[(metric, x)]


def _column(records: list[dict], col: str) -> list:
    return _js([r[col] for r in records])


def y_range(values) -> list[float] | None:
    """A y range at least 2% of the values' size wide, so equal trials do not look different
    (an axis spanning 119.8305 to 119.8325); None where plotly's own range is fine."""
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    if not v:
        return None
    lo, hi = min(v), max(v)
    mid, floor = (lo + hi) / 2, max(0.02 * abs((lo + hi) / 2), 1e-9)
    if hi - lo >= floor:
        return None
    return [mid - floor, mid + floor]


def _axes(layout: dict, x: str, xs, ys) -> None:
    if x in INTEGER_AXES:
        ticks = sorted({int(v) for v in xs if v is not None and not pd.isna(v)})
        kind = "log" if ticks and ticks[-1] / max(ticks[0], 1) >= 8 else "linear"
        layout["xaxis"].update(type=kind, tickvals=ticks, ticktext=[str(t) for t in ticks])
    rng = y_range(ys)
    if rng:
        layout["yaxis"]["range"] = rng


def _layout(title: str, x_title: str, y_title: str) -> dict:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "legend": {"title": {"text": ""}},
        "showlegend": True,
        "margin": {"t": 50},
    }


def spec_metric_vs(
    configs: Configs, x: str, metric: str, split: str = EVERY_FIELD, title: str | None = None
) -> dict:
    """Mean and 95% interval over seeds of ``metric`` against ``x``, one point per
    configuration; the traces are the values of ``split``'s fields (lines where a trace has one
    point per x, markers where several configurations share an x)."""
    s = _summary(configs, metric, x)
    data = []
    for i, (name, g) in enumerate(_record_groups(s, _split_fields(configs, split, x))):
        g = sorted(g, key=lambda r: r[x])
        xs = _column(g, x)
        data.append(
            {
                "type": "scatter",
                "x": xs,
                "y": _column(g, "mean"),
                "error_y": {"type": "data", "array": _column(g, "half"), "visible": True},
                "mode": "lines+markers" if len(set(xs)) == len(xs) else "markers",
                "name": esc(name or label(metric)),
                "marker": {"color": PALETTE[i % len(PALETTE)]},
                "customdata": [r["page_key"] for r in g],
                "hovertext": [r["hover"] for r in g],
                "hoverinfo": "text",
            }
        )
    layout = _layout(title or f"{label(metric)} against {x}", x, label(metric))
    ys = [r[c] for c in ("lo", "hi", "mean") for r in s]
    _axes(layout, x, [r[x] for r in s], ys)
    return {"data": data, "layout": layout}


def fig_metric_vs(
    configs: Configs, x: str, metric: str, split: str = EVERY_FIELD, title: str | None = None
) -> go.Figure:
    return go.Figure(spec_metric_vs(configs, x, metric, split, title))


def spec_bars(configs: Configs, metric: str, split: str, title: str | None = None) -> dict:
    """Every configuration's mean and interval as a bar: bars of one ``split`` value share a
    colour, and the rest of the configuration names the bar's group."""
    s = _summary(configs, metric, None)
    fields = _split_fields(configs, split)
    rest = [f for f in configs.fields if f not in fields]
    data = []
    for i, (name, g) in enumerate(_record_groups(s, fields)):
        data.append(
            {
                "type": "bar",
                "x": [esc(configs.label(r, rest)) for r in g],
                "y": _column(g, "mean"),
                "error_y": {"type": "data", "array": _column(g, "half"), "visible": True},
                "name": esc(name or label(metric)),
                "marker": {"color": PALETTE[i % len(PALETTE)]},
                "customdata": [r["page_key"] for r in g],
                "hovertext": [r["hover"] for r in g],
                "hoverinfo": "text",
            }
        )
    layout = _layout(title or f"{label(metric)} per configuration", "", label(metric))
    layout["barmode"] = "group"
    rng = y_range([r["mean"] for r in s])
    if rng:
        layout["yaxis"]["range"] = rng
    return {"data": data, "layout": layout}


def fig_bars(configs: Configs, metric: str, split: str, title: str | None = None) -> go.Figure:
    return go.Figure(spec_bars(configs, metric, split, title))


def heatmap_slices(configs: Configs) -> list[tuple[str, str]]:
    """The heatmap's slices: one per combination of the fields other than rf and depth."""
    rest = [f for f in configs.fields if f not in ("rf", "depth", *SPELLING)]
    return [(name, name or "all trials") for name, _ in _groups(configs.final, rest)]


def spec_heatmap(configs: Configs, metric: str, slice_name: str = "") -> dict:
    """rf x depth means of one slice (the other fields held at one value each)."""
    rest = [f for f in configs.fields if f not in ("rf", "depth", *SPELLING)]
    s = _summary(configs, metric, None)
    rows = dict(_record_groups(s, rest)).get(slice_name, [])
    cells: dict[tuple, tuple] = {}
    for r in rows:
        if not any(pd.isna(r[c]) for c in ("depth", "rf", "mean")):  # the first, as pivot_table
            cells.setdefault((r["depth"], r["rf"]), (float(r["mean"]), int(r["n"])))
    depths = sorted({d for d, _ in cells})
    rfs = sorted({r for _, r in cells})
    z = [[cells.get((d, r), (None, None))[0] for r in rfs] for d in depths]
    n = [[cells.get((d, r), (None, None))[1] for r in rfs] for d in depths]
    title = f"rf x depth: {label(metric)}" + (f" ({esc(slice_name)})" if slice_name else "")
    layout = _layout(title, "rf", "depth")
    layout["xaxis"]["type"] = "category"
    layout["yaxis"]["type"] = "category"
    trace = {
        "type": "heatmap",
        "z": z,
        "x": [fmt(c) for c in rfs],
        "y": [fmt(i) for i in depths],
        "customdata": n,
        "colorscale": "Viridis",
        "hovertemplate": "rf %{x}, depth %{y}<br>mean %{z:.4g}<br>n = %{customdata}<extra></extra>",
        "colorbar": {"title": {"text": ""}},
    }
    return {"data": [trace], "layout": layout}


def fig_heatmap(configs: Configs, metric: str, slice_name: str = "") -> go.Figure:
    return go.Figure(spec_heatmap(configs, metric, slice_name))


def _trial_hover(r: pd.Series | dict) -> str:
    parts = [
        f"trial {r['trial']}",
        r["cfg_label"],
        f"rf {fmt(r.get('rf'))}, decision rf {fmt(r.get('decision_rf'))}, "
        f"depth {fmt(r.get('depth'))}, seed {fmt(r.get('seed'))}",
        f"status {r.get('trial_status')}",
    ]
    return "<br>".join(esc(p) for p in parts)


def _trial_hovers(configs: Configs) -> list[str]:
    """Every trial's hover text, in ``configs.final``'s order (computed once)."""
    memo = _cache(configs)
    if "trials" not in memo:
        memo["trials"] = [_trial_hover(r) for r in configs.final.to_dict("records")]
    return memo["trials"]


def spec_erf(configs: Configs) -> dict:
    """Theoretical rf against the measured ERF of the conv stack (its central unit, Luo et al.
    2016), the decision rf, and the size of the decision's gradient map; one point per trial."""
    mask = configs.final["erf/conv_size95"].notna()
    ok = configs.final[mask]
    hover = [h for h, m in zip(_trial_hovers(configs), mask) if m]
    keys = list(ok["key"])
    data = []
    for col, name, symbol in (
        ("erf/conv_size95", "conv-stack ERF (95% mass)", "circle"),
        ("erf/conv_size50", "conv-stack ERF (50% mass)", "diamond"),
        ("erf/decision_size95", "decision gradient (95% mass)", "square-open"),
        ("decision_rf", "decision rf", "x"),
    ):
        data.append(
            {
                "type": "scatter",
                "x": _js(ok["rf"]),
                "y": _js(ok[col]) if col in ok else [None] * len(ok),
                "mode": "markers",
                "name": name,
                "customdata": keys,
                "hovertext": hover,
                "hoverinfo": "text+y",
                "marker": {"symbol": symbol, "size": 9},
            }
        )
    top = float(max([1, *ok["rf"].dropna(), *ok["decision_rf"].dropna()]))
    data.append(
        {
            "type": "scatter",
            "x": [1, top],
            "y": [1, top],
            "mode": "lines",
            "name": "= theoretical rf",
            "line": {"dash": "dot", "color": "#888"},
        }
    )
    layout = _layout("theoretical rf, decision rf and measured ERF", "theoretical rf (px)", "px")
    _axes(layout, "rf", ok["rf"], [])
    return {"data": data, "layout": layout}


def fig_erf(configs: Configs) -> go.Figure:
    return go.Figure(spec_erf(configs))


# Plotly's own rule for a scatter's default mode: markers only on traces of fewer than 20 points
# (200 trials x 50 evaluations of markers are 10,000 SVG nodes: a third of a second to draw).
MARKERS_BELOW = 20


def curve_variants(frame: pd.DataFrame, configs: Configs, metrics: list[str]) -> dict:
    """The training curves of every metric, for the page: the first metric's whole figure, the
    others only their y values and layout (every metric has the same traces, in one order)."""
    trials = _curve_trials(frame, configs)
    out = {}
    for i, m in enumerate(metrics):
        spec = _spec_curves(trials, configs, m)
        out[m] = {"": spec if i == 0 else _ys(spec)}
    return out


def _ys(spec: dict) -> dict:
    return {"ys": [t["y"] for t in spec["data"]], "layout": spec["layout"]}


def _curve_trials(frame: pd.DataFrame, configs: Configs) -> list[tuple[dict, str, pd.DataFrame]]:
    """(final row, hover text, evaluations by step) of every trial with a final row."""
    index = {t: i for i, t in enumerate(configs.final["trial"])}
    records = configs.final.to_dict("records")
    hovers = _trial_hovers(configs)
    out = []
    for trial, rows in frame.groupby("trial", sort=True):
        if trial in index:
            i = index[trial]
            out.append((records[i], hovers[i], rows.sort_values("step")))
    return out


def _spec_curves(trials: list, configs: Configs, metric: str) -> dict:
    data = []
    colours: dict[str, str] = {}
    longest = max((len(rows) for _, _, rows in trials), default=0)
    for r, hover, rows in trials:
        group = r["cfg_label"]
        first = group not in colours
        colours.setdefault(group, PALETTE[len(colours) % len(PALETTE)])
        ys = rows[metric].tolist() if metric in rows else []
        data.append(
            {
                "type": "scatter",
                "x": _js(rows["epoch"]),
                "y": [None if pd.isna(v) else float(f"{v:.5g}") for v in ys],
                "mode": "lines+markers" if longest < MARKERS_BELOW else "lines",
                "name": esc(group),
                "legendgroup": esc(group),
                "showlegend": first,
                "line": {"color": colours[group]},
                "meta": {"key": r["key"], "cfg": configs.key(r["cfg"])},
                "hovertext": hover,
                "hoverinfo": "text+y",
            }
        )
    layout = _layout(f"training curves: {label(metric)}", "epoch", label(metric))
    return {"data": data, "layout": layout}


def spec_curves(frame: pd.DataFrame, configs: Configs, metric: str) -> dict:
    """Every trial's ``metric`` over training, coloured by configuration (one legend entry
    each; the page recolours by another split without redrawing the data). Every trial has a
    trace, in the same order for every metric, so the page swaps only the y values."""
    return _spec_curves(_curve_trials(frame, configs), configs, metric)


def fig_curves(frame: pd.DataFrame, configs: Configs, metric: str) -> go.Figure:
    return go.Figure(spec_curves(frame, configs, metric))


def spec_time(configs: Configs, split: str = EVERY_FIELD) -> dict:
    """Time per epoch against rf, one point per trial, a legend entry per ``split`` value."""
    mask = configs.final["time/epoch_s"].notna()
    ok = configs.final[mask].assign(hover=[h for h, m in zip(_trial_hovers(configs), mask) if m])
    data = []
    for i, (name, g) in enumerate(_groups(ok, _split_fields(configs, split, "rf"))):
        data.append(
            {
                "type": "scatter",
                "x": _js(g["rf"]),
                "y": _js(g["time/epoch_s"]),
                "mode": "markers",
                "name": esc(name or "trials"),
                "marker": {"color": PALETTE[i % len(PALETTE)], "size": 9},
                "customdata": list(g["key"]),
                "hovertext": list(g["hover"]),
                "hoverinfo": "text+y",
            }
        )
    layout = _layout("time per epoch against rf", "rf", label("time/epoch_s"))
    _axes(layout, "rf", ok["rf"], ok["time/epoch_s"])
    return {"data": data, "layout": layout}


def fig_time(configs: Configs, split: str = EVERY_FIELD) -> go.Figure:
    return go.Figure(spec_time(configs, split))


def spec_parcoords(configs: Configs, metric: str) -> dict:
    """One line per trial (finished or running) through every varying field and ``metric``,
    coloured by the metric; drag along an axis to select a range."""
    ok = configs.final[configs.final[metric].notna()] if metric in configs.final else None
    dims = []
    if ok is not None and len(ok):
        for f in configs.fields:
            values = [fmt(v) for v in ok[f]]
            if all(_is_number(v) for v in values if v):
                dims.append({"label": f, "values": [float(v) if v else None for v in values]})
            else:
                cats = sorted(set(values), key=lambda v: _order((v,)))
                where = {c: i for i, c in enumerate(cats)}
                dims.append(
                    {
                        "label": f,
                        "values": [where[v] for v in values],
                        "tickvals": list(range(len(cats))),
                        "ticktext": [esc(c) or "-" for c in cats],
                    }
                )
        dims.append({"label": esc(METRICS[metric].label), "values": _js(ok[metric])})
    trace = {
        "type": "parcoords",
        "dimensions": dims,
        "line": {
            "color": _js(ok[metric]) if dims else [],
            "colorscale": "Viridis",
            "reversescale": bool(METRICS[metric].lower_is_better),
            "showscale": True,
        },
        "meta": {"keys": list(ok["key"]) if dims else []},
    }
    layout = {"title": {"text": f"every varying field and {label(metric)}"}, "margin": {"t": 90}}
    return {"data": [trace], "layout": layout}


def fig_parcoords(configs: Configs, metric: str) -> go.Figure:
    return go.Figure(spec_parcoords(configs, metric))
