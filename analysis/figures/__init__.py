"""The page's charts: plotly figures over the configurations of :mod:`analysis.stats`.

Each chart is a plain JSON-ready dict (``spec_*``), which the page embeds as is, and ``fig_*``
wraps one in a validated ``go.Figure``. Each ``fig_*`` draws one metric and one *split* (the
field whose values become the traces; ``""``: every varying field, one trace per
configuration); the page offers the others in its controls.

- :mod:`~analysis.figures.base`: palette, splits and grouping, axes, layout;
- :mod:`~analysis.figures.means`: means over seeds with their interval and every seed as a dot
  (metric against rf or depth, configurations side by side);
- :mod:`~analysis.figures.heatmap`: rf x depth, coloured only beyond the noise;
- :mod:`~analysis.figures.trials`: one point or line per trial (ERF against rf with the true
  identity, training curves, time per epoch, parallel coordinates).
"""

from analysis.figures.base import (
    CHART_METRICS,
    EVERY_FIELD,
    INTEGER_AXES,
    PALETTE,
    SPELLING,
    _order_one,
    available_metrics,
    axis_kind,
    esc,
    label,
    natural,
    split_options,
    y_range,
)
from analysis.figures.heatmap import differs, fig_heatmap, heatmap_slices, spec_heatmap
from analysis.figures.means import (
    SEEDS,
    fig_bars,
    fig_metric_vs,
    interval_text,
    seed_values,
    spec_bars,
    spec_metric_vs,
)
from analysis.figures.trials import (
    ERF_MARKERS,
    MARKERS_BELOW,
    curve_variants,
    fig_curves,
    fig_erf,
    fig_parcoords,
    fig_time,
    identity_points,
    spec_curves,
    spec_erf,
    spec_erf_share,
    spec_parcoords,
    spec_time,
)

__all__ = [
    "natural",
    "CHART_METRICS",
    "ERF_MARKERS",
    "EVERY_FIELD",
    "INTEGER_AXES",
    "MARKERS_BELOW",
    "PALETTE",
    "SEEDS",
    "SPELLING",
    "_order_one",
    "available_metrics",
    "axis_kind",
    "curve_variants",
    "differs",
    "esc",
    "fig_bars",
    "fig_curves",
    "fig_erf",
    "fig_heatmap",
    "fig_metric_vs",
    "fig_parcoords",
    "fig_time",
    "heatmap_slices",
    "identity_points",
    "interval_text",
    "label",
    "seed_values",
    "spec_bars",
    "spec_curves",
    "spec_erf",
    "spec_erf_share",
    "spec_heatmap",
    "spec_metric_vs",
    "spec_parcoords",
    "spec_time",
    "split_options",
    "y_range",
]
