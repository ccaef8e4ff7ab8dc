"""Per-trial charts: theoretical rf against the measured ERF, training curves, time per epoch
and parallel coordinates. One point or line per trial, no means; each carries its trial's page
key (``customdata``, or ``meta`` for a curve), which the page's filters match.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.figures.base import (
    EVERY_FIELD,
    PALETTE,
    _axes,
    _groups,
    _is_number,
    _js,
    _layout,
    _order,
    _split_fields,
    _trial_hovers,
    esc,
    label,
    y_range,
)
from analysis.stats import Configs, fmt
from ganrf.metrics.spec import METRICS

# (column, legend name, marker, size), in drawing order: later traces are drawn over earlier ones
ERF_MARKERS = (
    ("erf/conv_size50", "conv-stack ERF (50% mass)", "diamond", 7),
    ("erf/conv_size95", "conv-stack ERF (95% mass)", "circle-open", 13),
    ("erf/decision_size95", "decision gradient (95% mass)", "square-open", 9),
    ("decision_rf", "decision rf", "x", 9),
)


def spec_erf(configs: Configs) -> dict:
    """Theoretical rf against the measured ERF of the conv stack (its central unit, Luo et al.
    2016), the decision rf, and the size of the decision's gradient map; one point per trial,
    and the line y = x over the trials' rfs (points spaced along the axis, both axes alike)."""
    mask = configs.final["erf/conv_size95"].notna()
    ok = configs.final[mask]
    hover = [h for h, m in zip(_trial_hovers(configs), mask) if m]
    keys = list(ok["key"])
    data = []
    # Where the two masses coincide (a 1x1 conv: both 1 px) the later trace hides the earlier:
    # the small filled 50% diamonds first, the wider hollow 95% rings over them, both seen.
    for col, name, symbol, size in ERF_MARKERS:
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
                "marker": {"symbol": symbol, "size": size},
            }
        )
    rfs = [float(v) for v in ok["rf"] if v is not None and not pd.isna(v) and float(v) > 0]
    lo, hi = min(rfs, default=1.0), max(rfs, default=1.0)
    layout = _layout("theoretical rf, decision rf and measured ERF", "theoretical rf (px)", "px")
    _axes(layout, "rf", ok["rf"], [])
    kind = layout["xaxis"].get("type", "linear")
    line = identity_points(lo, hi, kind)
    data.append(
        {
            "type": "scatter",
            "x": line,
            "y": line,
            "mode": "lines",
            "name": "= theoretical rf",
            "line": {"dash": "dot", "color": "#888"},
            "hoverinfo": "skip",
        }
    )
    # The same scale on both axes (log on both, or linear on both): each segment of the identity
    # is then straight in the drawn space as y = x is, so the drawn line is y = x everywhere.
    ticks = sorted({*layout["xaxis"].get("tickvals", []), *_ints(ok["decision_rf"])})
    layout["yaxis"]["type"] = kind
    if ticks:
        layout["yaxis"].update(tickvals=ticks, ticktext=[str(t) for t in ticks])
    return {"data": data, "layout": layout}


DODGE = 0.5  # the share of a depth's slot the rfs' columns spread over


def dodge(i: int, n: int) -> float:
    """How far right of its depth the ``i``-th of ``n`` rfs is drawn: one-layer stacks of every
    rf share depth 1 and a share near 1, so undodged they hid one another."""
    return 0.0 if n < 2 else DODGE * (i / (n - 1) - 0.5)


def spec_erf_share(configs: Configs) -> dict:
    """The conv stack's ERF (95% mass) as a share of its theoretical rf, against depth: one
    trace per theoretical rf (in numeric order, each a little right of the last at every depth:
    :func:`dodge`), one point per trial, and the line share = 1
    (ERF = rf). Luo et al. (2016) found the ERF a shrinking fraction of the rf as stacks deepen;
    here that is read off directly, for plain stacks and residual blocks alike."""
    final = configs.final
    mask = final["erf/conv_size95"].notna() & final["rf"].notna() & final["depth"].notna()
    ok = final[mask]
    hover = [h for h, m in zip(_trial_hovers(configs), mask) if m]
    data = []
    rfs = sorted({int(v) for v in ok["rf"]})
    for i, rf in enumerate(rfs):
        rows = [j for j, v in enumerate(ok["rf"]) if int(v) == rf]
        sub = ok.iloc[rows]
        data.append(
            {
                "type": "scatter",
                "x": [float(d) + dodge(i, len(rfs)) for d in sub["depth"]],
                "y": [float(e) / rf for e in sub["erf/conv_size95"]],
                "mode": "markers",
                "name": f"rf {rf}",
                "customdata": list(sub["key"]),
                "hovertext": [hover[j] for j in rows],
                "hoverinfo": "text+y",
            }
        )
    depths = sorted({int(v) for v in ok["depth"]})
    lo, hi = (depths[0] - 0.5, depths[-1] + 0.5) if depths else (0.5, 1.5)
    data.append(
        {
            "type": "scatter",
            "x": [lo, hi],
            "y": [1.0, 1.0],
            "mode": "lines",
            "name": "ERF = theoretical rf",
            "line": {"dash": "dot", "color": "#888"},
            "hoverinfo": "skip",
        }
    )
    title = "conv-stack ERF (95% mass) as a share of the theoretical rf, by depth"
    layout = _layout(title, "depth (layers or residual blocks)", "ERF / theoretical rf")
    layout["xaxis"].update(tickvals=depths, ticktext=[str(d) for d in depths], range=[lo, hi])
    layout["yaxis"]["rangemode"] = "tozero"
    return {"data": data, "layout": layout}


IDENTITY_POINTS = 25


def identity_points(lo: float, hi: float, kind: str) -> list[float]:
    """Points from ``lo`` to ``hi`` evenly spaced on an axis of ``kind`` (log: geometrically),
    for the line y = x."""
    if hi <= lo:
        return [lo, hi]
    n = IDENTITY_POINTS - 1
    if kind == "log":
        return [lo * (hi / lo) ** (i / n) for i in range(n + 1)]
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def _ints(values) -> set[int]:
    return {int(v) for v in values if v is not None and not pd.isna(v)}


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
    # in configuration order (rf 1, 3, 5, 13: numbers as numbers), then seed: the legend lists
    # each configuration where its first trace is
    return sorted(out, key=lambda t: (t[0]["cfg"], _seed_order(t[0].get("seed"))))


def _seed_order(seed) -> tuple:
    return (1, 0.0) if seed is None or pd.isna(seed) else (0, float(seed))


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
    rng = y_range([v for t in data for v in t["y"]])  # equal trials must not look apart
    if rng:
        layout["yaxis"]["range"] = rng
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
                numbers = [float(v) if v else None for v in values]
                dims.append({"label": f, "values": numbers, **_integer_ticks(numbers)})
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
        rng = y_range(ok[metric])  # as every y axis: at least 2% of the values wide
        dims.append(
            {
                "label": esc(METRICS[metric].label),
                "values": _js(ok[metric]),
                **({"range": rng} if rng else {}),
            }
        )
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


def _integer_ticks(values: list[float | None]) -> dict:
    """An axis of whole numbers (rf, depth) ticked at its values only: plotly's own ticks put
    3.5 between rf 3 and 4 and 1.2 on a depth axis, values no design has."""
    present = sorted({v for v in values if v is not None})
    if not present or any(not v.is_integer() for v in present):
        return {}
    ticks = [int(v) for v in present]
    return {"tickvals": ticks, "ticktext": [str(t) for t in ticks]}


def fig_parcoords(configs: Configs, metric: str) -> go.Figure:
    return go.Figure(spec_parcoords(configs, metric))
