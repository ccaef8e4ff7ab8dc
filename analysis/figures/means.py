"""Charts of means over seeds: a metric against rf or depth, and configurations side by side.

Every mean is over the seeds of one configuration (every varying field but the seed) and comes
with its 95% t interval and every seed as a dot beside it: with two seeds the interval is
t(0.975, 1) = 12.7 standard errors wide and spans nearly anything, so the dots show what the
seeds actually gave. The hover names the interval (``mean of 2 seeds, 95% t interval (t=12.71)
[a, b]``); nothing is pooled across experiments, heads or any other field. Points carry their
page key in ``customdata`` (a configuration's for a mean, a trial's for a seed), which the
page's filters match.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go

from analysis.figures.base import (
    EVERY_FIELD,
    PALETTE,
    _axes,
    _cache,
    _js,
    _layout,
    _record_groups,
    _split_fields,
    axis_kind,
    esc,
    label,
)
from analysis.stats import SUMMARY_STATUSES, Configs, fmt, interval_str
from ganrf.metrics.spec import METRICS, RECOGNISABLE_MIN_CLASSES

SEEDS = "seeds"  # the ``meta.role`` of a trace of seed dots (beside a trace of means)
# How far right of its mean a seed dot sits: this fraction of the x axis' span (log or linear).
DOT_OFFSET = 0.012


def interval_text(lo: float, hi: float, how: str) -> str:
    """What a mean's interval is, in words, as :func:`analysis.stats.metric_interval` names it
    (``how``), with its ends: ``mean of 2 seeds, 95% t interval (t=12.71) [74.15, 86.85]``, a
    Wilson interval for a verdict, a t interval cut to a share's [0, 1]; a single seed has none."""
    return how if pd.isna(lo) else f"{how} [{lo:.4g}, {hi:.4g}]"


def error_bars(records: list[dict]) -> dict:
    """Plotly's ``error_y`` of the means in ``records``: from each interval's low end to its
    high end, which need not be symmetric (a Wilson interval, a t interval cut to [0, 1])."""
    return {
        "type": "data",
        "symmetric": False,
        "array": _js([r["hi"] - r["mean"] for r in records]),
        "arrayminus": _js([r["mean"] - r["lo"] for r in records]),
        "visible": True,
    }


def reach_cut(layout: dict, metric: str, ys: list) -> None:
    """Where ``metric`` has a cut, draw it and make the y axis span it and every value in ``ys``
    (with 5% to spare), so a reader sees how far below the cut a mean is."""
    cut = cut_line(layout, metric)
    if cut is None:
        return
    v = [float(y) for y in [*ys, cut] if y is not None and not pd.isna(y)]
    pad = 0.05 * ((max(v) - min(v)) or 1.0)
    layout["yaxis"]["range"] = [min(v) - pad, max(v) + pad]


def cut_line(layout: dict, metric: str) -> float | None:
    """A dashed line across the chart at the value a verdict is drawn at (the registry's
    ``cut``: the recognisable share's 0.52), named on the chart; returns it for the y range."""
    m = METRICS.get(metric)
    if m is None or m.cut is None:
        return None
    layout["shapes"] = [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "yref": "y",
            "y0": m.cut,
            "y1": m.cut,
            "line": {"dash": "dash", "color": "#444", "width": 1},
        }
    ]
    layout["annotations"] = [
        {
            "xref": "paper",
            "x": 1,
            "xanchor": "right",
            "yref": "y",
            "y": m.cut,
            "yanchor": "bottom",
            "text": f"cut {m.cut:g}: a set at or above it passes (with "
            f"{RECOGNISABLE_MIN_CLASSES} classes)",
            "showarrow": False,
            "font": {"size": 11},
        }
    ]
    return m.cut


def seed_values(configs: Configs, metric: str) -> dict[int, list[dict]]:
    """Per configuration, the trials its mean is over (finished or running, with a value), in
    seed order: their page key, seed, value and hover text."""
    memo = _cache(configs)
    if ("seeds", metric) not in memo:
        final = configs.final
        ok = final["trial_status"].isin(SUMMARY_STATUSES)
        if metric in final:
            ok &= pd.to_numeric(final[metric], errors="coerce").notna()
        else:
            ok &= False
        out: dict[int, list[dict]] = {}
        for r in final[ok].sort_values("seed", na_position="last").to_dict("records"):
            value = float(r[metric])
            hover = (
                f"trial {esc(r['trial'])}<br>{esc(r['cfg_label'])}<br>seed {esc(fmt(r['seed']))}"
                f"<br>{esc(label(metric))}: {value:.4g}"
            )
            out.setdefault(r["cfg"], []).append(
                {"key": r["key"], "seed": r["seed"], "value": value, "hover": hover}
            )
        memo[("seeds", metric)] = out
    return memo[("seeds", metric)]


def _hover(s: pd.DataFrame, x: str | None, metric: str, seeds: dict[int, list[dict]]) -> list[str]:
    out = []
    for r in s.to_dict("records"):
        parts = [esc(r["cfg_label"])]
        if x:
            parts.append(f"{esc(x)} {esc(fmt(r[x]))}")
        parts.append(
            f"{esc(label(metric))}: {interval_str(r['mean'], r['lo'], r['hi'], r['half'])}"
        )
        parts.append(interval_text(r["lo"], r["hi"], r["how"]))
        values = ", ".join(f"{d['value']:.4g}" for d in seeds.get(r["cfg"], []))
        parts.append(f"seeds (dots): {values}")
        out.append("<br>".join(parts))
    return out


def _summary(configs: Configs, metric: str, x: str | None) -> list[dict]:
    """``configs.summary(metric)`` (the rows with an ``x``) as records, with each
    configuration's page key, hover text, seeds and fields as shown: computed once per metric
    and axis, shared by every split."""
    memo = _cache(configs)
    if (metric, x) not in memo:
        s = configs.summary(metric)
        if x:
            s = s[s[x].notna()] if x in s else s.iloc[0:0]
        seeds = seed_values(configs, metric)
        records = s.to_dict("records")
        for r, hover in zip(records, _hover(s, x, metric, seeds)):
            r.update(page_key=configs.key(r["cfg"]), hover=hover, seeds=seeds.get(r["cfg"], []))
            r["shown"] = {f: fmt(r[f]) for f in configs.fields}
        memo[(metric, x)] = records
    return memo[(metric, x)]


def _column(records: list[dict], col: str) -> list:
    return _js([r[col] for r in records])


def _nudge(kind: str | None, xs) -> Callable[[float], float]:
    """x -> the x of a seed dot beside the mean at x: DOT_OFFSET of the axis to the right."""
    v = [float(x) for x in xs if x is not None and not pd.isna(x)]
    if not v or kind not in ("log", "linear"):
        return lambda x: x
    if kind == "log":
        factor = (max(v) / max(min(v), 1e-9)) ** DOT_OFFSET
        return lambda x: x * factor
    step = DOT_OFFSET * ((max(v) - min(v)) or 1.0)
    return lambda x: x + step


def _dots(g: list[dict], name: str, colour: str, x_of, **extra) -> dict:
    """Every seed of the configurations in ``g`` as a dot (hollow, the means' colour), in the
    legend group of their means; each dot carries its trial's page key."""
    seeds = [(r, d) for r in g for d in r["seeds"]]
    return {
        "type": "scatter",
        "x": [x_of(r) for r, _ in seeds],
        "y": [d["value"] for _, d in seeds],
        "mode": "markers",
        "name": name,
        "legendgroup": name,
        "showlegend": False,
        "marker": {"color": colour, "symbol": "circle-open", "size": 7},
        "customdata": [d["key"] for _, d in seeds],
        "hovertext": [d["hover"] for _, d in seeds],
        "hoverinfo": "text",
        "meta": {"role": SEEDS},
        **extra,
    }


def spec_metric_vs(
    configs: Configs, x: str, metric: str, split: str = EVERY_FIELD, title: str | None = None
) -> dict:
    """Mean and 95% interval over seeds of ``metric`` against ``x``, one point per
    configuration, and each seed as a dot just right of its mean; the traces are the values of
    ``split``'s fields (lines where a trace has one point per x, markers where several
    configurations share an x)."""
    s = _summary(configs, metric, x)
    nudge = _nudge(axis_kind(x, [r[x] for r in s]), [r[x] for r in s])
    data = []
    for i, (name, g) in enumerate(_record_groups(s, _split_fields(configs, split, x))):
        g = sorted(g, key=lambda r: r[x])
        xs = _column(g, x)
        name = esc(name or label(metric))
        colour = PALETTE[i % len(PALETTE)]
        data.append(
            {
                "type": "scatter",
                "x": xs,
                "y": _column(g, "mean"),
                "error_y": error_bars(g),
                "mode": "lines+markers" if len(set(xs)) == len(xs) else "markers",
                "name": name,
                "legendgroup": name,
                "marker": {"color": colour},
                "customdata": [r["page_key"] for r in g],
                "hovertext": [r["hover"] for r in g],
                "hoverinfo": "text",
            }
        )
        data.append(_dots(g, name, colour, lambda r: nudge(float(r[x]))))
    layout = _layout(title or f"{label(metric)} against {x}", x, label(metric))
    ys = [r[c] for c in ("lo", "hi", "mean") for r in s] + [
        d["value"] for r in s for d in r["seeds"]
    ]
    reach_cut(layout, metric, ys)
    _axes(layout, x, [r[x] for r in s], ys)
    return {"data": data, "layout": layout}


def fig_metric_vs(
    configs: Configs, x: str, metric: str, split: str = EVERY_FIELD, title: str | None = None
) -> go.Figure:
    return go.Figure(spec_metric_vs(configs, x, metric, split, title))


def spec_bars(configs: Configs, metric: str, split: str, title: str | None = None) -> dict:
    """Every configuration's mean and interval as a bar from 0, its seeds as dots over it: bars
    of one ``split`` value share a colour, and the rest of the configuration names the bar's
    group."""
    s = _summary(configs, metric, None)
    fields = _split_fields(configs, split)
    rest = [f for f in configs.fields if f not in fields]

    def x_of(r: dict) -> str:
        """The bar's group; where heads differ, with D's size: a dense head adds a weight per
        pixel of the last feature map, so the two D's compared may differ many times over."""
        text = esc(configs.label(r, rest))
        if "head" in configs.fields and not pd.isna(r["params_d"]):
            text += f"<br>D {int(r['params_d']):,} params"
        return text

    data = []
    for i, (name, g) in enumerate(_record_groups(s, fields)):
        name = esc(name or label(metric))
        colour = PALETTE[i % len(PALETTE)]
        group = {"offsetgroup": str(i), "alignmentgroup": "bars"}
        data.append(
            {
                "type": "bar",
                "x": [x_of(r) for r in g],
                "y": _column(g, "mean"),
                "error_y": error_bars(g),
                "name": name,
                "legendgroup": name,
                "marker": {"color": colour, "opacity": 0.6},
                "customdata": [r["page_key"] for r in g],
                "hovertext": [r["hover"] for r in g],
                "hoverinfo": "text",
                **group,
            }
        )
        data.append(_dots(g, name, colour, x_of, **group))
    layout = _layout(title or f"{label(metric)} per configuration", "", label(metric))
    # a bar's length is its value: the axis starts at 0, never at a floor under tiny differences
    layout.update(barmode="group", scattermode="group")
    layout["yaxis"]["rangemode"] = "tozero"
    reach_cut(layout, metric, [0.0, *(r[c] for c in ("hi", "mean") for r in s)])
    return {"data": data, "layout": layout}


def fig_bars(configs: Configs, metric: str, split: str, title: str | None = None) -> go.Figure:
    return go.Figure(spec_bars(configs, metric, split, title))
