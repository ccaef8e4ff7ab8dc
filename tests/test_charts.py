"""What the charts show, read from the figure objects of a tiny hand-made results table: every
seed as a dot beside its mean, the interval named and its bounds right, bars from 0, the ERF
chart's identity truly y = x as drawn, and a heatmap that colours only what differs beyond noise.
Expected values come from the table itself and from scipy's t distribution, not from the code."""

import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from analysis import figures as F
from analysis.stats import configurations

FID = "metric/fid"
# (rf, depth, seed, status, FID): two seeds at rf 1 (wide apart), two close ones and a diverged
# one at rf 13, three at rf 1 depth 2, one at rf 13 depth 2.
ROWS = [
    (1, 1, 0, "finished", 80.0),
    (1, 1, 1, "finished", 100.0),
    (13, 1, 0, "finished", 30.0),
    (13, 1, 1, "running", 30.2),
    (13, 1, 2, "diverged", 999.0),
    (1, 2, 0, "finished", 54.0),
    (1, 2, 1, "finished", 56.0),
    (1, 2, 2, "finished", 58.0),
    (13, 2, 0, "finished", 40.0),
]
AVERAGED = [r for r in ROWS if r[3] != "diverged"]


def table(rows=ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "trial": f"rf{rf}-d{depth}-s{seed}",
                "trial_status": status,
                "experiment_name": "x",
                "rf": rf,
                "depth": depth,
                "decision_rf": 28,
                "seed": seed,
                FID: fid,
                "erf/conv_size95": rf + 0.5,
                "erf/conv_size50": max(1.0, rf / 2),
                "erf/decision_size95": 20.0,
                "time/epoch_s": 2.0,
            }
            for rf, depth, seed, status, fid in rows
        ]
    )


def t_interval(values) -> tuple[float, float, float]:
    """(t, lo, hi) of the two-sided 95% t interval of the mean, from scipy."""
    v = np.asarray(values, dtype=float)
    t = stats.t.ppf(0.975, len(v) - 1)
    half = t * stats.sem(v)
    return t, v.mean() - half, v.mean() + half


def seeds_of(rf=None, depth=None) -> list[float]:
    return [
        fid
        for r, d, _, _, fid in AVERAGED
        if (rf is None or r == rf) and (depth is None or d == depth)
    ]


def split(fig):
    """(traces of means, traces of seed dots) of a mean chart."""
    dots = [t for t in fig.data if (t.meta or {}).get("role") == F.SEEDS]
    return [t for t in fig.data if t not in dots], dots


NUMBER = r"-?[\d.]+(?:e[+-]?\d+)?"


def stated_interval(hover: str) -> tuple[int, float, float, float]:
    """(n, t, lo, hi) as a hover states them."""
    m = re.search(
        rf"mean of (\d+) seeds, 95% t interval \(t=({NUMBER})\) \[({NUMBER}), ({NUMBER})\]", hover
    )
    assert m, hover
    return int(m[1]), float(m[2]), float(m[3]), float(m[4])


def test_every_seed_is_a_dot_beside_its_mean():
    cf = configurations(table())
    means, dots = split(F.fig_metric_vs(cf, "rf", FID, "depth"))
    assert [t.name for t in means] == [t.name for t in dots] == ["depth=1", "depth=2"]
    for depth, mean, dot in zip((1, 2), means, dots):
        expected = seeds_of(rf=1, depth=depth) + seeds_of(rf=13, depth=depth)
        assert list(dot.y) == expected  # the seeds' own values; the diverged 999 is not one
        assert dot.legendgroup == mean.legendgroup and not dot.showlegend
        keys = cf.final.set_index("key")
        assert [keys.loc[k, FID] for k in dot.customdata] == expected  # each dot is its trial
        # beside its mean: just right of it on the log rf axis, never on another rf
        for x, key in zip(dot.x, dot.customdata):
            rf = keys.loc[key, "rf"]
            assert rf < x < rf * 1.1
    assert list(means[0].y) == pytest.approx([90.0, 30.1])


def test_hover_names_the_interval_with_independent_bounds():
    cf = configurations(table())
    charts = [F.fig_metric_vs(cf, "rf", FID, "depth"), F.fig_bars(cf, FID, "depth")]
    checked = 0
    for fig in charts:
        means, _ = split(fig)
        for trace in means:
            for hover in trace.hovertext:  # the configuration is its first line
                rf = int(re.search(r"rf=(\d+)", hover)[1])
                depth = int(re.search(r"depth=(\d+)", hover)[1])
                values = seeds_of(rf=rf, depth=depth)
                if len(values) < 2:
                    assert "1 seed: no interval" in hover
                    continue
                n, t, lo, hi = stated_interval(hover)
                t_ref, lo_ref, hi_ref = t_interval(values)
                assert n == len(values)
                assert t == pytest.approx(t_ref, rel=1e-3)
                assert (lo, hi) == (
                    pytest.approx(lo_ref, rel=1e-3),
                    pytest.approx(hi_ref, rel=1e-3),
                )
                checked += 1
    assert checked == 2 * 3  # three configurations with seeds to spare, on both charts


def test_bars_start_at_zero_and_carry_their_seeds():
    # values whose spread is tiny next to their size: an axis floor would make them look apart
    rows = [(1, 1, s, "finished", 119.8305 + 0.001 * s) for s in (0, 1)]
    rows += [(13, 1, s, "finished", 119.8315 + 0.001 * s) for s in (0, 1)]
    cf = configurations(table(rows))
    fig = F.fig_bars(cf, FID, "rf")
    assert fig.layout.yaxis.range is None and fig.layout.yaxis.rangemode == "tozero"
    bars, dots = split(fig)
    assert [list(t.y) for t in bars] == [
        [pytest.approx(119.8310)],
        [pytest.approx(119.8320)],
    ]
    assert [list(t.y) for t in dots] == [[r[4] for r in rows[:2]], [r[4] for r in rows[2:]]]
    assert [t.offsetgroup for t in dots] == [t.offsetgroup for t in bars]  # over their own bar


def drawn(xs, ys, xtype: str, ytype: str, frac: float):
    """The data coordinates of what plotly draws a fraction ``frac`` along each segment of a
    line: it joins the points straight in the axes' drawn space (log10 on a log axis)."""
    fwd = {"log": math.log10, "linear": lambda v: v}
    back = {"log": lambda v: 10**v, "linear": lambda v: v}
    out = []
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        x = fwd[xtype](x0) + frac * (fwd[xtype](x1) - fwd[xtype](x0))
        y = fwd[ytype](y0) + frac * (fwd[ytype](y1) - fwd[ytype](y0))
        out.append((back[xtype](x), back[ytype](y)))
    return out


@pytest.mark.parametrize("rfs,kind", [((1, 13), "log"), ((1, 5), "linear")])
def test_erf_identity_is_y_equals_x_as_drawn(rfs, kind):
    rows = [(rf, 1, 0, "finished", 50.0) for rf in rfs]
    fig = F.fig_erf(configurations(table(rows)))
    line = next(t for t in fig.data if t.name == "= theoretical rf")
    xtype, ytype = fig.layout.xaxis.type, fig.layout.yaxis.type
    assert xtype == ytype == kind
    xs, ys = list(line.x), list(line.y)
    assert len(xs) >= 10 and (xs[0], xs[-1]) == pytest.approx(rfs)  # across the rf axis
    assert xs == ys
    for frac in (0.25, 0.5, 0.75):  # between the points too, where plotly draws straight
        for x, y in drawn(xs, ys, xtype, ytype, frac):
            assert y == pytest.approx(x, rel=1e-9)
    # the drawing model is the one that caught the old line: (1, 1) to (28, 28), log x, linear y
    ((x, y),) = drawn([1, 28], [1, 28], "log", "linear", 0.5)
    assert y != pytest.approx(x, rel=0.1)


def test_heatmap_colours_only_cells_whose_interval_excludes_the_reference():
    cf = configurations(table())
    fig = F.fig_heatmap(cf, FID, "")
    grey, coloured = fig.data
    assert list(coloured.x) == ["1", "13"] and list(coloured.y) == ["1", "2"]
    cell_means = {(d, rf): np.mean(seeds_of(rf=rf, depth=d)) for d in (1, 2) for rf in (1, 13)}
    reference = np.mean(list(cell_means.values()))  # the slice's mean of cells
    for i, d in enumerate((1, 2)):
        for j, rf in enumerate((1, 13)):
            values = seeds_of(rf=rf, depth=d)
            beyond = len(values) > 1 and not (
                t_interval(values)[1] <= reference <= t_interval(values)[2]
            )
            assert coloured.z[i][j] == (pytest.approx(cell_means[(d, rf)]) if beyond else None)
            assert (grey.z[i][j] is None) == beyond  # every cell is drawn, once
            assert grey.customdata[i][j] == pytest.approx(cell_means[(d, rf)])
            word = "coloured" if beyond else "grey"
            assert coloured.hovertext[i][j].split("<br>")[-1].startswith(word)
    # the table's own answer: only rf 13 at depth 1 (30.0, 30.2) is clear of 54.03; rf 1's
    # 80 and 100 and depth 2's 54, 56, 58 include it, and one seed has no interval
    assert [list(row) for row in coloured.z] == [[None, pytest.approx(30.1)], [None, None]]
    rule = re.search(r"excludes the reference (" + NUMBER + ")", fig.layout.title.text)
    assert rule and float(rule[1]) == pytest.approx(reference, rel=1e-3)


def test_heatmap_cells_print_mean_and_n_and_carry_their_configuration():
    cf = configurations(table())
    grey, coloured = F.fig_heatmap(cf, FID, "").data
    # depth 1: rf 1 (80, 100), rf 13 (30.0, 30.2; the diverged seed left out); depth 2: three, one
    ns = [[2, 2], [3, 1]]
    for i, d in enumerate((1, 2)):
        for j, rf in enumerate((1, 13)):
            text = coloured.text[i][j]
            assert text.endswith(f"<br>n={ns[i][j]}")
            assert float(re.split(r" |<br>", text)[0]) == pytest.approx(
                np.mean(seeds_of(rf, d)), rel=1e-3
            )
            cfg = cf.final[(cf.final["rf"] == rf) & (cf.final["depth"] == d)]["cfg"].iloc[0]
            assert grey.meta["keys"][i][j] == coloured.meta["keys"][i][j] == cf.key(cfg)


def test_erf_chart_draws_the_95_percent_rings_over_the_50_percent_marks():
    fig = F.fig_erf(configurations(table()))
    names = [t.name for t in fig.data]
    i50, i95 = names.index("conv-stack ERF (50% mass)"), names.index("conv-stack ERF (95% mass)")
    assert i95 > i50  # drawn later: on top
    ring, mark = fig.data[i95].marker, fig.data[i50].marker
    assert ring.symbol.endswith("-open") and ring.size > mark.size  # the mark shows through


def test_parallel_coordinates_tick_whole_number_fields_at_their_values():
    rows = [(rf, d, 0, "finished", 50.0 + rf) for rf in (1, 3, 4, 13) for d in (1, 2, 4)]
    fig = F.fig_parcoords(configurations(table(rows)), FID)
    dims = {d.label: d for d in fig.data[0].dimensions}
    assert list(dims["rf"].tickvals) == [1, 3, 4, 13] and list(dims["rf"].ticktext) == [
        "1",
        "3",
        "4",
        "13",
    ]
    assert list(dims["depth"].tickvals) == [1, 2, 4]
    assert fig.data[0].dimensions[-1].tickvals is None  # the metric's axis: plotly's own ticks


def test_training_curve_legend_lists_rfs_in_numeric_order():
    rows = [(rf, 1, s, "finished", 50.0) for rf in (1, 13, 3, 5) for s in (0, 1)]
    final = table(rows)
    frame = pd.concat([final.assign(step=k, epoch=float(k)) for k in (1, 2)])
    fig = F.fig_curves(frame, configurations(final), FID)
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["rf=1", "rf=3", "rf=5", "rf=13"]


def test_head_bars_name_each_discriminators_parameter_count():
    """The issue's smoke sweep compared an image-head D of 6,353 parameters with a patch-head D
    of 89: every bar of a head comparison says its D's size."""
    final = table([(5, 1, s, "finished", 40.0 + s) for s in (0, 1)] * 2)
    final["trial"] = [f"t{i}" for i in range(4)]
    final["head"] = ["image", "image", "patch", "patch"]
    final["params_d"] = [6353, 6353, 89, 89]
    fig = F.fig_bars(configurations(final), FID, "head")
    bars = [t for t in fig.data if t.type == "bar"]
    assert [list(t.x) for t in bars] == [
        ["all trials<br>D 6,353 params"],
        ["all trials<br>D 89 params"],
    ]
    dots = [t for t in fig.data if t.type != "bar"]
    assert [set(t.x) for t in dots] == [set(t.x) for t in bars]  # each seed over its own bar


def test_erf_share_by_depth_shows_each_trials_erf_over_its_rf():
    """ERF / theoretical rf against depth, one trace per rf in numeric order, the share 1 line;
    the shares are the hand-made table's ERFs divided by its rfs."""
    frame = table([(13, 2, 0, "finished", 50.0), (5, 1, 0, "finished", 50.0),
                   (5, 3, 0, "finished", 50.0)])  # fmt: skip
    frame["erf/conv_size95"] = [6.5, 5.0, 2.0]  # 13 -> 0.5 at depth 2; 5 -> 1.0 (d 1), 0.4 (d 3)
    fig = go.Figure(F.spec_erf_share(configurations(frame)))
    traces = {t.name: t for t in fig.data}
    assert [t.name for t in fig.data] == ["rf 5", "rf 13", "ERF = theoretical rf"]
    # two rfs: rf 5 a quarter of a depth left of its depth, rf 13 a quarter right
    assert sorted(zip(traces["rf 5"].x, traces["rf 5"].y)) == [(0.75, 1.0), (2.75, 0.4)]
    assert list(zip(traces["rf 13"].x, traces["rf 13"].y)) == [(2.25, 0.5)]
    line = traces["ERF = theoretical rf"]
    assert list(line.y) == [1.0, 1.0] and list(line.x) == [0.5, 3.5]
    assert list(fig.layout.xaxis.tickvals) == [1, 2, 3]  # whole depths only


def test_curves_and_parallel_coordinates_keep_equal_trials_together():
    """The README's promise, on the two charts a new user found breaking it: a y axis (and the
    parallel coordinates' metric axis) at least 2% of its values wide. Curves at 120.0 and 120.6
    span 0.5%: the axis is 120.3 +- 2% of 120.3; values far apart keep plotly's own range."""
    final = table([(rf, 1, 0, "finished", 120.0) for rf in (1, 5)])
    frame = pd.concat([final.assign(step=k, epoch=float(k)) for k in (1, 2)])
    frame[FID] = [120.0, 120.6, 120.0, 120.6]
    fig = F.fig_curves(frame, configurations(final), FID)
    assert list(fig.layout.yaxis.range) == pytest.approx([120.3 - 2.406, 120.3 + 2.406])
    final[FID] = [119.8473, 119.8495]
    metric_axis = F.fig_parcoords(configurations(final), FID).data[0].dimensions[-1]
    assert list(metric_axis.range) == pytest.approx([119.8484 - 2.396968, 119.8484 + 2.396968])
    final[FID] = [50.0, 120.0]
    assert F.fig_parcoords(configurations(final), FID).data[0].dimensions[-1].range is None
    frame[FID] = [50.0, 120.0, 60.0, 110.0]
    assert F.fig_curves(frame, configurations(final), FID).layout.yaxis.range is None


def test_a_design_shared_by_two_questions_stays_on_its_rf_line():
    # the questions preset runs the one-layer rf-13 image-head D once for questions 1 and 4:
    # its label "onelayer,heads" names the questions it serves, not a different configuration
    rows = table([(1, 1, 0, "finished", 50.0), (3, 1, 0, "finished", 40.0)])
    shared = table([(13, 1, 0, "finished", 30.0)])
    frame = pd.concat(
        [rows.assign(experiment="onelayer"), shared.assign(experiment="onelayer,heads")]
    )
    cf = configurations(frame)
    assert "experiment" not in cf.fields
    means, _ = split(F.fig_metric_vs(cf, "rf", FID))
    assert [(list(t.x), list(t.y)) for t in means] == [([1, 3, 13], [50.0, 40.0, 30.0])]


def test_erf_share_draws_every_one_layer_rf_apart():
    # four one-layer stacks: all at depth 1 with ERF = rf (share 1); undodged, three were hidden
    frame = table([(rf, 1, 0, "finished", 50.0) for rf in (1, 3, 5, 13)])
    frame["erf/conv_size95"] = [1.0, 3.0, 5.0, 13.0]
    fig = go.Figure(F.spec_erf_share(configurations(frame)))
    points = [(t.x[0], t.y[0]) for t in fig.data if t.name.startswith("rf ")]
    assert [y for _, y in points] == [1.0] * 4
    assert [x for x, _ in points] == pytest.approx([0.75, 0.75 + 1 / 6, 0.75 + 2 / 6, 1.25])
    lo, hi = fig.layout.xaxis.range
    assert lo < 0.75 and hi > 1.25 and list(fig.layout.xaxis.tickvals) == [1]


def test_layers_read_in_natural_order_on_axes_and_filters():
    # "conv13" sorted before "conv3" as text on the parallel-coordinates axis
    frame = table([(rf, 1, 0, "finished", 50.0) for rf in (13, 3, 5)])
    frame["layers"] = ["conv13", "conv3", "conv5s2,conv5s2"]
    frame["head"] = ["image", "patch", "image"]  # a text field that is not a number either
    fig = F.fig_parcoords(configurations(frame), FID)
    dims = {d.label: d for d in fig.data[0].dimensions}
    assert list(dims["layers"].ticktext) == ["conv3", "conv5s2,conv5s2", "conv13"]
    order = {"conv3": 0, "conv5s2,conv5s2": 1, "conv13": 2}
    assert list(dims["layers"].values) == [order[v] for v in frame["layers"]]
    assert F.natural("conv5s2,conv5s2") < F.natural("conv13") < F.natural("res3")
    # the page's layers filter lists its options in the same order
    from analysis.report import _filters

    page = _filters(configurations(frame), "s0")
    select = page[page.index('data-filter="layers"') :].split("</select>")[0]
    options = re.findall(r'<option value="([^"]*)">', select)
    assert options == ["", "conv3", "conv5s2,conv5s2", "conv13"]  # "" is "all"
