"""The page's charts: plotly figures over the configurations of :mod:`analysis.stats`.

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
    keys = df[fields].apply(lambda r: tuple(fmt(v) for v in r), axis=1)
    for key in sorted(set(keys), key=_order):
        yield " · ".join(f"{f}={v}" for f, v in zip(fields, key)), df[keys == key]


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


def _none(values) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def _hover(s: pd.DataFrame, x: str | None, metric: str) -> list[str]:
    out = []
    for _, r in s.iterrows():
        parts = [esc(r["cfg_label"])]
        if x:
            parts.append(f"{esc(x)} {esc(fmt(r[x]))}")
        interval = "" if r["n"] < 2 else f" (95% interval {r['lo']:.4g} to {r['hi']:.4g})"
        parts.append(f"{esc(label(metric))}: {plus_minus(r['mean'], r['half'])}{interval}")
        parts.append(f"n = {r['n']} seed{'s' if r['n'] != 1 else ''}")
        out.append("<br>".join(parts))
    return out


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


def _axes(fig: go.Figure, x: str, xs, ys) -> None:
    if x in INTEGER_AXES:
        ticks = sorted({int(v) for v in xs if v is not None and not pd.isna(v)})
        kind = "log" if ticks and ticks[-1] / max(ticks[0], 1) >= 8 else "linear"
        fig.update_xaxes(type=kind, tickvals=ticks, ticktext=[str(t) for t in ticks])
    rng = y_range(ys)
    if rng:
        fig.update_yaxes(range=rng)


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> None:
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend={"title": {"text": ""}},
        showlegend=True,
        margin={"t": 50},
    )


def fig_metric_vs(
    configs: Configs, x: str, metric: str, split: str = EVERY_FIELD, title: str | None = None
) -> go.Figure:
    """Mean and 95% interval over seeds of ``metric`` against ``x``, one point per
    configuration; the traces are the values of ``split``'s fields (lines where a trace has one
    point per x, markers where several configurations share an x)."""
    s = configs.summary(metric)
    s = s[s[x].notna()] if x in s else s.iloc[0:0]
    fig = go.Figure()
    for i, (name, g) in enumerate(_groups(s, _split_fields(configs, split, x))):
        g = g.sort_values(x)
        one_per_x = g[x].is_unique
        fig.add_trace(
            go.Scatter(
                x=list(g[x]),
                y=list(g["mean"]),
                error_y={"type": "data", "array": _none(g["half"]), "visible": True},
                mode="lines+markers" if one_per_x else "markers",
                name=esc(name or label(metric)),
                marker={"color": PALETTE[i % len(PALETTE)]},
                customdata=[configs.key(c) for c in g["cfg"]],
                hovertext=_hover(g, x, metric),
                hoverinfo="text",
            )
        )
    _layout(fig, title or f"{label(metric)} against {x}", x, label(metric))
    _axes(fig, x, s.get(x, []), list(s["lo"]) + list(s["hi"]) + list(s["mean"]))
    return fig


def fig_bars(configs: Configs, metric: str, split: str, title: str | None = None) -> go.Figure:
    """Every configuration's mean and interval as a bar: bars of one ``split`` value share a
    colour, and the rest of the configuration names the bar's group."""
    s = configs.summary(metric)
    fields = _split_fields(configs, split)
    rest = [f for f in configs.fields if f not in fields]
    fig = go.Figure()
    for i, (name, g) in enumerate(_groups(s, fields)):
        fig.add_trace(
            go.Bar(
                x=[esc(configs.label(r, rest)) for _, r in g.iterrows()],
                y=list(g["mean"]),
                error_y={"type": "data", "array": _none(g["half"]), "visible": True},
                name=esc(name or label(metric)),
                marker={"color": PALETTE[i % len(PALETTE)]},
                customdata=[configs.key(c) for c in g["cfg"]],
                hovertext=_hover(g, None, metric),
                hoverinfo="text",
            )
        )
    _layout(fig, title or f"{label(metric)} per configuration", "", label(metric))
    fig.update_layout(barmode="group")
    rng = y_range(list(s["mean"]))
    if rng:
        fig.update_yaxes(range=rng)
    return fig


def heatmap_slices(configs: Configs) -> list[tuple[str, str]]:
    """The heatmap's slices: one per combination of the fields other than rf and depth."""
    rest = [f for f in configs.fields if f not in ("rf", "depth", *SPELLING)]
    return [(name, name or "all trials") for name, _ in _groups(configs.final, rest)]


def fig_heatmap(configs: Configs, metric: str, slice_name: str = "") -> go.Figure:
    """rf x depth means of one slice (the other fields held at one value each)."""
    rest = [f for f in configs.fields if f not in ("rf", "depth", *SPELLING)]
    s = configs.summary(metric)
    rows = dict(_groups(s, rest)).get(slice_name, s.iloc[0:0])
    grid = rows.pivot_table(index="depth", columns="rf", values="mean", aggfunc="first")
    n = rows.pivot_table(index="depth", columns="rf", values="n", aggfunc="first")
    n = n.reindex(index=grid.index, columns=grid.columns)
    fig = go.Figure(
        go.Heatmap(
            z=grid.values.tolist(),
            x=[fmt(c) for c in grid.columns],
            y=[fmt(i) for i in grid.index],
            customdata=n.values.tolist(),
            colorscale="Viridis",
            hovertemplate="rf %{x}, depth %{y}<br>mean %{z:.4g}<br>n = %{customdata}"
            "<extra></extra>",
            colorbar={"title": {"text": ""}},
        )
    )
    title = f"rf x depth: {label(metric)}" + (f" ({esc(slice_name)})" if slice_name else "")
    _layout(fig, title, "rf", "depth")
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def _trial_hover(r: pd.Series) -> str:
    parts = [
        f"trial {r['trial']}",
        r["cfg_label"],
        f"rf {fmt(r.get('rf'))}, decision rf {fmt(r.get('decision_rf'))}, "
        f"depth {fmt(r.get('depth'))}, seed {fmt(r.get('seed'))}",
        f"status {r.get('trial_status')}",
    ]
    return "<br>".join(esc(p) for p in parts)


def fig_erf(configs: Configs) -> go.Figure:
    """Theoretical rf against the measured ERF of the conv stack (its central unit, Luo et al.
    2016), the decision rf, and the size of the decision's gradient map; one point per trial."""
    ok = configs.final[configs.final["erf/conv_size95"].notna()]
    hover = [_trial_hover(r) for _, r in ok.iterrows()]
    keys = list(ok["key"])
    fig = go.Figure()
    for col, name, symbol in (
        ("erf/conv_size95", "conv-stack ERF (95% mass)", "circle"),
        ("erf/conv_size50", "conv-stack ERF (50% mass)", "diamond"),
        ("erf/decision_size95", "decision gradient (95% mass)", "square-open"),
        ("decision_rf", "decision rf", "x"),
    ):
        fig.add_trace(
            go.Scatter(
                x=list(ok["rf"]),
                y=list(ok[col]),
                mode="markers",
                name=name,
                customdata=keys,
                hovertext=hover,
                hoverinfo="text+y",
                marker={"symbol": symbol, "size": 9},
            )
        )
    top = float(max([1, *ok["rf"].dropna(), *ok["decision_rf"].dropna()]))
    fig.add_trace(
        go.Scatter(
            x=[1, top],
            y=[1, top],
            mode="lines",
            name="= theoretical rf",
            line={"dash": "dot", "color": "#888"},
        )
    )
    _layout(fig, "theoretical rf, decision rf and measured ERF", "theoretical rf (px)", "px")
    _axes(fig, "rf", ok["rf"], [])
    return fig


def fig_curves(frame: pd.DataFrame, configs: Configs, metric: str) -> go.Figure:
    """Every trial's ``metric`` over training, coloured by configuration (one legend entry
    each; the page recolours by another split without redrawing the data). Every trial has a
    trace, in the same order for every metric, so the page swaps only the y values."""
    keys = dict(zip(configs.final["trial"], configs.final.index))
    fig = go.Figure()
    colours: dict[str, str] = {}
    for trial, rows in frame.groupby("trial", sort=True):
        if trial not in keys:
            continue
        r = configs.final.loc[keys[trial]]
        rows = rows.sort_values("step")
        group = r["cfg_label"]
        first = group not in colours
        colours.setdefault(group, PALETTE[len(colours) % len(PALETTE)])
        fig.add_trace(
            go.Scatter(
                x=list(rows["epoch"]),
                y=[None if pd.isna(v) else float(f"{v:.5g}") for v in rows.get(metric, [])],
                mode="lines+markers",
                name=esc(group),
                legendgroup=esc(group),
                showlegend=first,
                line={"color": colours[group]},
                meta={"key": r["key"], "cfg": configs.key(r["cfg"])},
                hovertext=_trial_hover(r),
                hoverinfo="text+y",
            )
        )
    _layout(fig, f"training curves: {label(metric)}", "epoch", label(metric))
    return fig


def fig_time(configs: Configs, split: str = EVERY_FIELD) -> go.Figure:
    """Time per epoch against rf, one point per trial, a legend entry per ``split`` value."""
    ok = configs.final[configs.final["time/epoch_s"].notna()]
    fig = go.Figure()
    for i, (name, g) in enumerate(_groups(ok, _split_fields(configs, split, "rf"))):
        fig.add_trace(
            go.Scatter(
                x=list(g["rf"]),
                y=list(g["time/epoch_s"]),
                mode="markers",
                name=esc(name or "trials"),
                marker={"color": PALETTE[i % len(PALETTE)], "size": 9},
                customdata=list(g["key"]),
                hovertext=[_trial_hover(r) for _, r in g.iterrows()],
                hoverinfo="text+y",
            )
        )
    _layout(fig, "time per epoch against rf", "rf", label("time/epoch_s"))
    _axes(fig, "rf", ok["rf"], ok["time/epoch_s"])
    return fig


def fig_parcoords(configs: Configs, metric: str) -> go.Figure:
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
                dims.append(
                    {
                        "label": f,
                        "values": [cats.index(v) for v in values],
                        "tickvals": list(range(len(cats))),
                        "ticktext": [esc(c) or "-" for c in cats],
                    }
                )
        dims.append({"label": esc(METRICS[metric].label), "values": list(ok[metric])})
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            line={
                "color": list(ok[metric]) if dims else [],
                "colorscale": "Viridis",
                "reversescale": bool(METRICS[metric].lower_is_better),
                "showscale": True,
            },
            meta={"keys": list(ok["key"]) if dims else []},
        )
    )
    fig.update_layout(title=f"every varying field and {label(metric)}", margin={"t": 90})
    return fig
