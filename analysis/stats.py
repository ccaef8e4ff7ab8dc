"""Configurations and their statistics: what varies between trials, and means that never pool.

A *configuration* is one combination of every field that varies between the trials of a page
other than the seed: the experiment folder (where two folders hold the same trial, a rerun; pieces
of one run, folders of different trials, are compared across), its preset, the dataset, the design (rf, depth,
layers, head, norm, dropout...), the loss, and any training-config key a ``--set`` changed. The
fields are found in the data, never listed by hand, so a key that starts varying becomes a field
by itself. Means are taken over the seeds of one configuration only, with a 95% interval
(:func:`metric_interval`: t, cut to a bounded metric's range; Wilson for a 1/0 verdict).

Left out of the fields, because they say which question a trial serves but not what it learns:
the experiment a design was planned for (``experiment``: the questions preset runs the one-layer
rf-13 D with an image head once, for question 1 and question 4 both, labelled
"onelayer,heads"; as a field it split question 1's rf trend into two lines). Left out because
they change where or how fast a trial runs but not what it learns: the data folder
(``data.root``: a cluster's and a laptop's copy of MNIST are the same data),
``data.download``, ``data.workers``, ``data.device_max_gb``, ``device``, ``threads`` and
``cuda_graph``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ganrf.metrics.spec import METRICS

# Trials whose last evaluation is a result: averaged. Diverged and errored trials are listed.
SUMMARY_STATUSES = ("finished", "running")
NOT_FIELDS = {
    "seed",
    "data.root",
    "data.download",
    "data.workers",
    "data.device_max_gb",
    "device",
    "threads",
    "cuda_graph",
}
# Frame columns that are fields, in display order; config keys they stand for are not repeated.
NAMED_FIELDS = {
    "experiment_name": (),
    "preset": (),
    "dataset": ("data.dataset",),
    "rf": ("d.layers",),
    "depth": ("d.layers",),
    "layers": ("d.layers",),
    "channels": ("d.channels",),
    "head": ("d.head",),
    "norm": ("d.norm",),
    "dropout": ("d.dropout",),
    "loss": ("loss.kind",),
}
# Set verdicts (1/0 per trial): a configuration shows how many of its seeds passed, never a mean
# with an interval ("success 0 ± 0" read as a measurement).
STRICT = "metric/success"  # samples close to real digits
LAX = "metric/recognisable"  # the laxer level: a number appears (docs/metrics.md)
VERDICTS = (STRICT, LAX)
Z975 = 1.959964  # the standard normal's 0.975 quantile
# Two-sided 95% t quantiles, t(0.975, df) for df = 1..30.
T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """t(0.975, df); past 30 the Cornish-Fisher expansion (within 1e-3 of the exact value)."""
    if df < 1:
        return math.nan
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def fmt(value: Any) -> str:
    """A field value as the page shows and filters it: 5, 0.3, image; empty for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def mean_interval(values: pd.Series) -> tuple[int, float, float]:
    """(n, mean, half-width of the 95% t interval; NaN for a single seed)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    n = len(v)
    if n == 0:
        return 0, math.nan, math.nan
    mean = float(v.mean())
    if n == 1:
        return 1, mean, math.nan
    return n, mean, t975(n - 1) * float(v.std(ddof=1)) / math.sqrt(n)


def wilson(k: int, n: int, z: float = Z975) -> tuple[float, float]:
    """The Wilson score interval (95%) of a proportion, ``k`` of ``n``: for verdicts over seeds
    (0 of 3 passed: [0, 0.56], never "0 ± 0")."""
    if n < 1:
        return math.nan, math.nan
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Interval:
    """A configuration's mean over its seeds with its 95% interval.

    Attributes:
        n: seeds with a value.
        mean: their mean (for a verdict, the share that passed).
        lo, hi: the interval's ends (NaN for a single seed of a measured metric).
        half: its half width where it is symmetric (a t interval inside the metric's bounds),
            else NaN: a table writes ``mean ± half`` only then, else ``mean [lo, hi]``.
        how: what the interval is, in words, for hovers.
    """

    n: int
    mean: float
    lo: float
    hi: float
    half: float
    how: str


def metric_interval(values: pd.Series, metric: str) -> Interval:
    """``metric``'s mean over ``values`` (one per seed) and its 95% interval: for a verdict
    (:data:`VERDICTS`, 1/0 per seed) the Wilson interval of k of n; otherwise the t interval,
    cut to the registry's bounds of the metric where it crosses them. Cutting keeps the
    coverage: the true mean lies within the bounds, so it lies in the t interval exactly when it
    lies in the cut one."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    n = len(v)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan, "no seed")
    if metric in VERDICTS:
        k = int(round(float(v.sum())))
        lo, hi = wilson(k, n)
        how = f"{k} of {n} seed{'s' * (n != 1)} passed, Wilson 95% interval"
        return Interval(n, k / n, lo, hi, math.nan, how)
    n, mean, half = mean_interval(v)
    if n == 1:
        return Interval(1, mean, math.nan, math.nan, math.nan, "1 seed: no interval")
    lo, hi = mean - half, mean + half
    how = f"mean of {n} seeds, 95% t interval (t={t975(n - 1):.4g})"
    bounds = METRICS[metric].bounds if metric in METRICS else None
    if bounds and (lo < bounds[0] or hi > bounds[1]):
        lo, hi, half = max(lo, bounds[0]), min(hi, bounds[1]), math.nan
        how += f" cut to the metric's range [{bounds[0]:g}, {bounds[1]:g}]"
    return Interval(n, mean, lo, hi, half, how)


def interval_str(mean: float, lo: float, hi: float, half: float, digits: int = 4) -> str:
    """``80.5 ± 6.4`` for a symmetric interval, ``0.19 [0, 0.31]`` for a cut or Wilson one,
    the bare mean for a single seed."""
    if mean is None or math.isnan(mean):
        return ""
    if not math.isnan(half) or math.isnan(lo):
        return plus_minus(mean, half, digits)
    return f"{mean:.{digits}g} [{lo:.2g}, {hi:.2g}]"


def plus_minus(mean: float, half: float, digits: int = 4) -> str:
    if mean is None or math.isnan(mean):
        return ""
    text = f"{mean:.{digits}g}"
    return text if half is None or math.isnan(half) else f"{text} ± {half:.2g}"


@dataclass
class Configs:
    """The final row of every trial with its configuration.

    Attributes:
        final: one row per trial, with a column per field, ``cfg`` (the configuration's number)
            and ``cfg_label`` ("head=image · rf=5").
        fields: the fields that vary, in display order (empty when every trial is alike).
    """

    final: pd.DataFrame
    fields: list[str]
    prefix: str = ""  # keeps the keys of several sections on one page apart

    def key(self, cfg: int) -> str:
        """The page's key of configuration ``cfg`` (filters match points by it)."""
        return f"{self.prefix}c{cfg}"

    def label(self, row: pd.Series | dict, fields: list[str] | None = None) -> str:
        fields = self.fields if fields is None else fields
        return " · ".join(f"{f}={fmt(row[f])}" for f in fields) or "all trials"

    @property
    def _shown(self) -> list[str]:
        """The fields, and the chart axes even where they do not vary."""
        axes = [c for c in ("rf", "depth") if c in self.final and c not in self.fields]
        return [*self.fields, *axes]

    def summary(self, metric: str) -> pd.DataFrame:
        """Per configuration: its fields, n (seeds averaged), mean, the 95% interval's half
        width (where symmetric) and ends and what it is (:func:`metric_interval`); over the
        trials that finished or are still running."""
        cache = self.__dict__.setdefault("_summaries", {})
        if metric not in cache:
            cache[metric] = self._summary(metric)
        return cache[metric].copy()

    def _summary(self, metric: str) -> pd.DataFrame:
        ok = self.final[self.final["trial_status"].isin(SUMMARY_STATUSES)]
        rows = []
        for cfg, g in ok.groupby("cfg", sort=True):
            if metric not in g or g[metric].isna().all():
                continue
            iv = metric_interval(g[metric], metric)
            first = g.iloc[0]
            rows.append(
                {
                    "cfg": cfg,
                    "cfg_label": first["cfg_label"],
                    **{f: first[f] for f in self._shown},
                    "params_d": first.get("params_d", math.nan),  # D's size, from design.json
                    "n": iv.n,
                    "mean": iv.mean,
                    "half": iv.half,
                    "lo": iv.lo,
                    "hi": iv.hi,
                    "how": iv.how,
                }
            )
        cols = [
            *("cfg", "cfg_label", *self._shown, "params_d"),
            *("n", "mean", "half", "lo", "hi", "how"),
        ]
        return pd.DataFrame(rows, columns=cols)


def _config_columns(final: pd.DataFrame) -> pd.DataFrame:
    cfgs = [json.loads(c) if isinstance(c, str) else {} for c in final.get("config", [])]
    return pd.DataFrame(cfgs, index=final.index) if cfgs else pd.DataFrame(index=final.index)


def _varies(col: pd.Series) -> bool:
    return col.map(fmt).nunique(dropna=False) > 1


def configurations(final: pd.DataFrame, prefix: str = "") -> Configs:
    """Find the fields that vary among ``final``'s trials and number their configurations;
    each trial gets a page key (``key``: ``<prefix>t<i>``)."""
    final, fields = _fields(final)
    final["key"] = [f"{prefix}t{i}" for i in range(len(final))]
    if fields:
        keys = final[fields].apply(lambda r: tuple(fmt(v) for v in r), axis=1)
        order = {k: i for i, k in enumerate(sorted(set(keys), key=_sort_key))}
        final["cfg"] = keys.map(order).astype(int)
    else:
        final["cfg"] = 0
    configs = Configs(final, fields, prefix)
    final["cfg_label"] = [configs.label(r) for _, r in final.iterrows()]
    return configs


def _fields(final: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(a copy of ``final`` with a column per varying training-config key, the fields that vary
    among its trials, in display order)."""
    final = final.reset_index(drop=True).copy()
    cfg = _config_columns(final)
    covered = {k for keys in NAMED_FIELDS.values() for k in keys} | NOT_FIELDS
    fields = [f for f in NAMED_FIELDS if f in final and _varies(final[f])]
    for key in sorted(cfg.columns):
        if key in covered or key.startswith("meta.") or not _varies(cfg[key]):
            continue
        if key not in final:
            final[key] = cfg[key]
            fields.append(key)
    if "experiment_name" in fields and not _folders_repeat(final, fields):
        fields.remove("experiment_name")
    return final, fields


def _folders_repeat(final: pd.DataFrame, fields: list[str]) -> bool:
    """Whether two experiment folders hold the same trial (every other field and the seed): a
    rerun, whose folder must then be a field, else its seeds would count twice. Folders that
    hold different trials are pieces of one run (the questions preset runs in three), whose
    configurations are compared across them."""
    others = [f for f in fields if f != "experiment_name"]
    cols = [c for c in (*others, "seed") if c in final]
    keys = final[cols].apply(lambda r: tuple(fmt(v) for v in r), axis=1)
    return bool((final.groupby(keys)["experiment_name"].nunique() > 1).any())


def folder_is_a_field(final: pd.DataFrame) -> bool:
    """Whether :func:`configurations` keeps the experiment folder as a field of ``final``."""
    return "experiment_name" in _fields(final)[1]


def _sort_key(key: tuple[str, ...]) -> tuple:
    """Numbers in numeric order (rf 5 before rf 13), text after."""
    out = []
    for v in key:
        try:
            out.append((0, float(v), ""))
        except ValueError:
            out.append((1, 0.0, v))
    return tuple(out)


def headline(frame: pd.DataFrame) -> list[str]:
    """The registry's headline metrics that ``frame`` has values for."""
    return [k for k, m in METRICS.items() if m.headline and k in frame and frame[k].notna().any()]


def summary_table(configs: Configs, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per configuration: every varying field, n (seeds averaged: finished or running
    trials), then per headline metric its mean and the half width of its 95% interval
    (``<label> ±``; empty for one seed or where the interval is cut to the metric's bounds) and
    its ends (``<label> lo``, ``<label> hi``); for a verdict (:data:`VERDICTS`) the share of seeds
    that passed and how many were judged (``<label> of``)."""
    final = configs.final
    metrics = headline(final) if metrics is None else metrics
    base = final.groupby("cfg", sort=True).first()[configs.fields]
    ok = final[final["trial_status"].isin(SUMMARY_STATUSES)]
    table = base.copy()
    table.insert(0, "n", ok.groupby("cfg").size().reindex(base.index).fillna(0).astype(int))
    for m in metrics:
        s = configs.summary(m).set_index("cfg")
        label = METRICS[m].label if m in METRICS else m
        table[label] = s["mean"].reindex(base.index)
        if m in VERDICTS:
            table[f"{label} of"] = s["n"].reindex(base.index)
        else:
            table[f"{label} ±"] = s["half"].reindex(base.index)
            table[f"{label} lo"] = s["lo"].reindex(base.index)
            table[f"{label} hi"] = s["hi"].reindex(base.index)
    cols = [*configs.fields, "n"] + [c for c in table.columns if c not in configs.fields + ["n"]]
    return table[cols].reset_index(drop=True)


def summary_display(table: pd.DataFrame) -> pd.DataFrame:
    """``summary_table`` with each metric and its interval joined as "80.5 ± 6.4" (a cut one
    as "0.19 [0, 0.31]"), and each
    verdict as the seeds that passed: "1 of 3"."""
    out = table.copy()
    for col in [c for c in table.columns if c.endswith(" of")]:
        label = col[:-3]
        out[label] = [
            "" if pd.isna(n) else f"{round(m * n)} of {int(n)}"
            for m, n in zip(table[label], table[col])
        ]
        out = out.drop(columns=col)
    for col in [c for c in table.columns if c.endswith(" ±")]:
        label = col[:-2]
        ends = zip(table[label], table[f"{label} lo"], table[f"{label} hi"], table[col])
        out[label] = [interval_str(*e) for e in ends]
        out = out.drop(columns=[col, f"{label} lo", f"{label} hi"])
    for c in out.columns:
        if out[c].dtype == object or c in ("n",):
            continue
        out[c] = out[c].map(fmt)
    return out
