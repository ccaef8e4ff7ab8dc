"""The page's charts: plotly figures over the tidy frame's final rows.

Each ``fig_*`` takes the final row of every trial and returns a figure whose metric is chosen
from a dropdown; the metrics are the registry's chartable ones (:mod:`ganrf.metrics.spec`).
"""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ganrf.metrics.spec import chartable

# (column, axis label, lower is better) of every chartable metric, from the registry
METRICS = [(m.key, m.axis_title, bool(m.lower_is_better)) for m in chartable()]
SUMMARY_STATUSES = ("finished", "running")  # diverged and errored trials are listed, not averaged
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


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def available_metrics(frame: pd.DataFrame) -> list[tuple[str, str, bool]]:
    return [m for m in METRICS if m[0] in frame.columns and frame[m[0]].notna().any()]


def _hover(row: pd.Series) -> str:
    cfg = json.loads(row.get("config") or "{}")
    parts = [
        f"trial {row['trial']}",
        f"D {row.get('layers')} ch {row.get('channels')} head {row.get('head')} norm {row.get('norm')}",
        f"rf {row.get('rf')}, decision rf {row.get('decision_rf')}, depth {row.get('depth')}, seed {row.get('seed')}",
        f"loss {cfg.get('loss.kind')}, lr D {cfg.get('optim.lr_d')} G {cfg.get('optim.lr_g')}, "
        f"batch {cfg.get('schedule.batch_size')}",
        f"status {row.get('trial_status')}",
    ]
    return "<br>".join(esc(p) for p in parts)


def _color(rf: Any, rfs: list) -> str:
    return PALETTE[rfs.index(rf) % len(PALETTE)] if rf in rfs else "#333"


def _dropdown(buttons: list[dict]) -> list[dict]:
    # top right, clear of the title on the left
    return [
        {
            "buttons": buttons,
            "direction": "down",
            "x": 1,
            "xanchor": "right",
            "y": 1.22,
            "yanchor": "top",
            "showactive": True,
        }
    ]


def _metric_layout(fig: go.Figure, title: str, x_title: str, y_title: str, buttons) -> None:
    """Title, axes and the metric dropdown every metric chart shares."""
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        updatemenus=_dropdown(buttons),
        margin={"t": 90},
    )


def _summary(final: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    ok = final[final["trial_status"].isin(SUMMARY_STATUSES)]
    g = ok.groupby(by, dropna=False)[metric]
    return g.agg(["mean", "std", "count"]).reset_index().sort_values(by)


def _err(summary: pd.DataFrame) -> dict:
    return {"type": "data", "array": list(summary["std"].fillna(0))}


def _grouped(final: pd.DataFrame, group: str, x: str, metrics) -> tuple[list, list, list[dict]]:
    """Per value of ``group``: the mean/std summary of the first metric against ``x`` (the
    traces drawn first), and the dropdown buttons that switch every trace to another metric."""
    values = sorted(final[group].dropna().unique())
    first, buttons = None, []
    for col, label, _ in metrics:
        sums = [_summary(final[final[group] == v], [x], col) for v in values]
        first = sums if first is None else first
        buttons.append(
            {
                "label": label,
                "method": "update",
                "args": [
                    {"y": [list(s["mean"]) for s in sums], "error_y": [_err(s) for s in sums]},
                    {"yaxis.title.text": label},
                ],
            }
        )
    return values, first, buttons


def fig_metric_vs(final: pd.DataFrame, x: str, line: str, metrics, title: str) -> go.Figure:
    """Mean +- std over seeds of each metric against ``x``, one line per ``line`` value."""
    values, first, buttons = _grouped(final, line, x, metrics)
    fig = go.Figure(
        [
            go.Scatter(
                x=s[x],
                y=s["mean"],
                error_y=_err(s),
                mode="lines+markers",
                name=f"{line} {v}",
                hovertemplate=f"{x} %{{x}}<br>mean %{{y:.4g}}<br>{line} {v}<extra></extra>",
            )
            for v, s in zip(values, first)
        ]
    )
    _metric_layout(fig, title, x, metrics[0][1], buttons)
    if x == "rf" and final["rf"].max() / max(final["rf"].min(), 1) >= 8:
        ticks = sorted(final["rf"].dropna().unique())
        fig.update_xaxes(type="log", tickvals=ticks, ticktext=[str(t) for t in ticks])
    return fig


def fig_heatmap(final: pd.DataFrame, metrics) -> go.Figure:
    def grid(col):
        s = _summary(final, ["depth", "rf"], col)
        return s.pivot(index="depth", columns="rf", values="mean")

    first = grid(metrics[0][0])
    fig = go.Figure(
        go.Heatmap(
            z=first.values,
            x=[str(c) for c in first.columns],
            y=[str(i) for i in first.index],
            colorscale="Viridis",
            hovertemplate="rf %{x}, depth %{y}<br>%{z:.4g}<extra></extra>",
        )
    )
    buttons = []
    for col, label, _ in metrics:
        g = grid(col).reindex(index=first.index, columns=first.columns)
        buttons.append(
            {
                "label": label,
                "method": "update",
                "args": [{"z": [g.values.tolist()]}, {"title.text": f"rf x depth: {label}"}],
            }
        )
    _metric_layout(fig, f"rf x depth: {metrics[0][1]}", "rf", "depth", buttons)
    return fig


def fig_heads(final: pd.DataFrame, metrics) -> go.Figure:
    heads, first, buttons = _grouped(final, "head", "layers", metrics)
    fig = go.Figure(
        [
            go.Bar(x=s["layers"].map(esc), y=s["mean"], error_y=_err(s), name=f"{h} head")
            for h, s in zip(heads, first)
        ]
    )
    _metric_layout(
        fig, "image head vs patch head, same conv stacks", "conv stack", metrics[0][1], buttons
    )
    fig.update_layout(barmode="group")
    return fig


def fig_erf(final: pd.DataFrame) -> go.Figure:
    ok = final[final["erf/size95"].notna()]
    hover = [_hover(r) for _, r in ok.iterrows()]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=ok["rf"],
            y=ok["erf/size95"],
            mode="markers",
            name="ERF size (95% mass)",
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ok["rf"],
            y=ok["erf/size50"],
            mode="markers",
            name="ERF size (50% mass)",
            hovertext=hover,
            hoverinfo="text",
            marker={"symbol": "diamond"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ok["rf"],
            y=ok["decision_rf"],
            mode="markers",
            name="decision rf",
            hovertext=hover,
            hoverinfo="text",
            marker={"symbol": "x", "size": 10},
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
    fig.update_layout(
        title="theoretical rf, decision rf and measured ERF",
        xaxis_title="theoretical rf (px)",
        yaxis_title="size (px)",
    )
    return fig


def fig_curves(frame: pd.DataFrame, metrics) -> go.Figure:
    """Every trial's metric over training; colours follow rf, the same in every chart."""
    fig = go.Figure()
    rfs = sorted(frame["rf"].dropna().unique().tolist())
    trials = list(frame.groupby("trial", sort=True))
    first = metrics[0][0]
    for trial, rows in trials:
        rows = rows.sort_values("step")
        r0 = rows.iloc[0]
        fig.add_trace(
            go.Scatter(
                x=rows["epoch"],
                y=rows[first],
                mode="lines+markers",
                name=esc(trial),
                legendgroup=f"rf {r0['rf']}",
                line={"color": _color(r0["rf"], rfs)},
                hovertext=_hover(r0),
                hoverinfo="text+y",
                showlegend=False,
            )
        )
    buttons = [
        {
            "label": label,
            "method": "update",
            "args": [
                {
                    "y": [
                        list(rows.sort_values("step")[col]) if col in rows else []
                        for _, rows in trials
                    ]
                },
                {"yaxis.title.text": label},
            ],
        }
        for col, label, _ in metrics
    ]
    _metric_layout(fig, "training curves (colour = rf)", "epoch", metrics[0][1], buttons)
    return fig


def fig_time(final: pd.DataFrame) -> go.Figure:
    ok = final[final["time/epoch_s"].notna()]
    fig = go.Figure(
        go.Scatter(
            x=ok["rf"],
            y=ok["time/epoch_s"],
            mode="markers",
            marker={
                "color": ok["depth"],
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": "depth"},
            },
            hovertext=[_hover(r) for _, r in ok.iterrows()],
            hoverinfo="text+y",
        )
    )
    fig.update_layout(
        title="time per epoch against rf (the notes' time column)",
        xaxis_title="rf",
        yaxis_title="s per epoch",
    )
    return fig
