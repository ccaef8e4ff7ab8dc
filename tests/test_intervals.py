"""The intervals the page draws for bounded metrics: a share's t interval is cut to [0, 1] (never
below 0), a 1/0 verdict over seeds gets the Wilson interval of k of n (never "0 ± 0"), and the
recognisable share's chart draws its cut. Expected numbers come from scipy, not from the code."""

import math
import re

import pandas as pd
import pytest
from scipy import stats

from analysis import figures as F
from analysis.stats import (
    LAX,
    configurations,
    metric_interval,
    summary_display,
    summary_table,
    wilson,
)
from ganrf.metrics.spec import METRICS, RECOGNISABLE_SHARE_MIN

SHARE = "metric/recognisable_share"
FID = "metric/fid"
# rf 1's shares sit near 0 and far apart (the t interval reaches below 0); rf 13's are close
# and well inside (0, 1). rf 1 passed in 0 of 3 seeds, rf 13 in 2 of 3.
SEEDS = {1: [0.01, 0.02, 0.30], 13: [0.50, 0.53, 0.56]}
PASSED = {1: [0, 0, 0], 13: [0, 1, 1]}


def table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "trial": f"rf{rf}-s{seed}",
                "trial_status": "finished",
                "experiment_name": "x",
                "rf": rf,
                "depth": 1,
                "seed": seed,
                SHARE: SEEDS[rf][seed],
                LAX: PASSED[rf][seed],
                FID: 10.0 + seed,
            }
            for rf in SEEDS
            for seed in range(3)
        ]
    )


def scipy_t(values) -> tuple[float, float]:
    v = pd.Series(values, dtype=float)
    half = stats.t.ppf(0.975, len(v) - 1) * stats.sem(v)
    return v.mean() - half, v.mean() + half


def scipy_wilson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


@pytest.mark.parametrize("k,n", [(0, 3), (1, 3), (2, 3), (3, 3), (0, 1), (1, 2), (7, 20)])
def test_wilson_matches_scipy(k, n):
    assert wilson(k, n) == pytest.approx(scipy_wilson(k, n), abs=1e-5)


def test_the_published_wilson_interval_of_none_of_three():
    # 0 of 3: [0, 0.5615] (Wilson 1927; e.g. statsmodels' proportion_confint(0, 3, "wilson"))
    assert wilson(0, 3) == pytest.approx((0.0, 0.5615), abs=1e-4)


def test_a_share_interval_is_cut_to_zero_and_says_so():
    lo, hi = scipy_t(SEEDS[1])
    assert lo < 0  # the case the page once drew: a share's interval below 0
    iv = metric_interval(pd.Series(SEEDS[1]), SHARE)
    assert (iv.lo, iv.hi) == (0.0, pytest.approx(hi, abs=1e-4))  # t(0.975, 2) to 4 digits
    assert math.isnan(iv.half) and "cut to the metric's range [0, 1]" in iv.how
    # inside the bounds, the plain symmetric t interval
    iv = metric_interval(pd.Series(SEEDS[13]), SHARE)
    assert (iv.lo, iv.hi) == pytest.approx(scipy_t(SEEDS[13]), abs=1e-4)
    assert iv.half == pytest.approx((iv.hi - iv.lo) / 2) and "cut" not in iv.how
    # an unbounded metric is never cut
    assert METRICS[FID].bounds is None
    iv = metric_interval(pd.Series([-5.0, 0.0, 40.0]), FID)
    assert iv.lo == pytest.approx(scipy_t([-5.0, 0.0, 40.0])[0], rel=1e-3) and iv.lo < 0


def test_a_verdict_is_k_of_n_with_a_wilson_interval():
    iv = metric_interval(pd.Series(PASSED[1]), LAX)
    assert (iv.mean, iv.lo, iv.hi) == pytest.approx((0.0, *scipy_wilson(0, 3)), abs=1e-5)
    assert iv.how == "0 of 3 seeds passed, Wilson 95% interval"
    iv = metric_interval(pd.Series(PASSED[13]), LAX)
    assert (iv.mean, iv.lo, iv.hi) == pytest.approx((2 / 3, *scipy_wilson(2, 3)), abs=1e-5)


def bars_of(trace) -> list[tuple[float, float]]:
    """(low end, high end) of each error bar of a trace, as plotly draws them."""
    e = trace.error_y
    assert e.symmetric is False
    return [(y - m, y + p) for y, m, p in zip(trace.y, e.arrayminus, e.array)]


def test_the_share_chart_never_draws_below_zero_and_draws_the_cut():
    cf = configurations(table())
    fig = F.fig_metric_vs(cf, "rf", SHARE)
    means = [t for t in fig.data if (t.meta or {}).get("role") != F.SEEDS]
    (trace,) = means
    (rf1, rf13) = bars_of(trace)
    assert rf1 == pytest.approx((0.0, scipy_t(SEEDS[1])[1]), abs=1e-4)
    assert rf13 == pytest.approx(scipy_t(SEEDS[13]), abs=1e-4)
    assert "cut to the metric's range [0, 1]" in trace.hovertext[0]
    assert re.search(r"0\.11 \[0, 0\.52\]", trace.hovertext[0])
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == RECOGNISABLE_SHARE_MIN == 0.52
    assert "cut 0.52" in fig.layout.annotations[0].text
    lo, hi = fig.layout.yaxis.range
    assert lo <= 0.0 and hi >= 0.56  # the axis holds the cut and every seed
    bars = F.fig_bars(cf, SHARE, "rf").layout
    assert bars.shapes[0].y0 == 0.52 and bars.yaxis.range[0] <= 0 and bars.yaxis.range[1] >= 0.56
    # a metric without a cut draws no line
    assert not F.fig_metric_vs(cf, "rf", FID).layout.shapes


def test_the_verdict_chart_and_table_say_k_of_n():
    cf = configurations(table())
    fig = F.fig_metric_vs(cf, "rf", LAX)
    (trace,) = [t for t in fig.data if (t.meta or {}).get("role") != F.SEEDS]
    expected = [*scipy_wilson(0, 3), *scipy_wilson(2, 3)]
    assert [end for bar in bars_of(trace) for end in bar] == pytest.approx(expected, abs=1e-5)
    assert "0 of 3 seeds passed, Wilson 95% interval" in trace.hovertext[0]
    assert "± 0" not in " ".join(trace.hovertext)
    shown = summary_display(summary_table(cf, [SHARE, LAX])).set_index("rf")
    label = METRICS[SHARE].label
    assert shown.loc["1", label] == "0.11 [0, 0.52]"  # cut: not "0.11 ± 0.37"
    assert shown.loc["13", label].startswith("0.53 ± 0.07")
    assert shown.loc["1", METRICS[LAX].label] == "0 of 3"
