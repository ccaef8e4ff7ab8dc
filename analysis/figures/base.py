"""What every chart shares: the palette, the splits and their grouping, axes and layout.

Each chart is built as a plain JSON-ready dict (``spec_*``: ``{"data": [...], "layout": {...}}``),
which the page embeds as is: building a ``go.Figure`` validates every property, and a page has
hundreds of metric x split variants. ``fig_*`` wraps a spec in a ``go.Figure`` (validated) for
callers and tests that want one.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import pandas as pd

from analysis.stats import Configs, fmt
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
    """Numbers in numeric order, then text in natural order (conv3 before conv13)."""
    return tuple((0, float(v), ()) if _is_number(v) else (1, 0.0, natural(v)) for v in key)


def natural(text: str) -> tuple:
    """``text``'s natural sort key: its runs of digits compared as numbers, so "conv3" sorts
    before "conv13" and "conv5s2,conv5s2" after "conv5"."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.findall(r"\d+|\D+", text)
    )


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


def axis_kind(x: str, xs) -> str | None:
    """How an integer axis (rf, depth) is drawn: log where its values span a factor of 8 or
    more (rf 1 to 28), else linear; None for any other axis (plotly's own)."""
    if x not in INTEGER_AXES:
        return None
    ticks = _ticks(xs)
    return "log" if ticks and ticks[-1] / max(ticks[0], 1) >= 8 else "linear"


def _ticks(xs) -> list[int]:
    return sorted({int(v) for v in xs if v is not None and not pd.isna(v)})


def _axes(layout: dict, x: str, xs, ys) -> None:
    kind = axis_kind(x, xs)
    if kind:
        ticks = _ticks(xs)
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
