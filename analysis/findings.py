"""The notes' four questions, answered from the data: one paragraph each, with effect sizes.

1. **rf size**: one-layer discriminators, every rf's mean in order, then the smallest rf
   against the largest;
2. **rf-equivalent stacks**: the same rf at different depths (the shallowest against the
   deepest);
3. **same depth, different rf**: the smallest against the largest rf at each depth > 1;
4. **image head vs patch head**: the same conv stacks with either head.

Every contrast holds everything else fixed (dataset, experiment folder, head, loss, norm, preset
and any ``--set`` key that varies), answers image and patch heads separately, and reports the
difference of the FID-like means with its 95% interval (Welch's t over seeds) and how many trials
of each side the verdict (``metric/success``) called a success, and where the trials measured it
the laxer level (``metric/recognisable``: a number appears). Where the interval holds 0 it says
"not distinguishable at n = a, b"; with one seed a side, that no interval can be given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy.stats import t as student_t

from analysis.control import question_rows
from analysis.stats import (
    LAX,
    STRICT,
    SUMMARY_STATUSES,
    fmt,
    folder_is_a_field,
    mean_interval,
    plus_minus,
)

METRIC = "metric/fid"
VERDICT = STRICT
# Fields a contrast holds fixed, besides the ones it varies (when the frame has them).
HELD = ("dataset", "experiment_name", "preset", "head", "loss", "norm", "dropout")


def held(final: pd.DataFrame) -> tuple[str, ...]:
    """:data:`HELD`, without the experiment folder where the folders are pieces of one run
    (:func:`analysis.stats.folder_is_a_field`): question 4's image heads ran in one piece of the
    questions preset and its patch heads in another."""
    if "experiment_name" in final and not folder_is_a_field(final):
        return tuple(c for c in HELD if c != "experiment_name")
    return HELD


@dataclass(frozen=True)
class Side:
    label: str
    values: pd.Series  # the metric, one per trial
    verdicts: pd.Series  # 1/0 per trial (may hold NaN)
    rows: pd.DataFrame | None = None  # the trials' final rows (their folders: sample grids)
    lax: pd.Series | None = None  # 1/0 per trial at the recognisable level, where measured

    @property
    def n(self) -> int:
        return int(self.values.notna().sum())

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def successes(self) -> str:
        v = self.verdicts.dropna()
        return f"{int(v.sum())}/{len(v)}" if len(v) else "no verdict"

    @property
    def recognised(self) -> str | None:
        """``k/n`` trials judged recognisable digits, or None where the level was not measured."""
        v = self.lax.dropna() if self.lax is not None else pd.Series(dtype=float)
        return f"{int(v.sum())}/{len(v)}" if len(v) else None


@dataclass(frozen=True)
class Finding:
    """One contrast: its sentence and the two sides it compares (whose samples the page shows
    beside it)."""

    text: str
    sides: tuple[Side, ...] = ()


def welch(a: Side, b: Side) -> tuple[float, float, float]:
    """(mean(a) - mean(b), the 95% interval's ends) by Welch's t; NaN ends with one seed."""
    diff = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return diff, math.nan, math.nan
    va, vb = float(a.values.var(ddof=1)) / a.n, float(b.values.var(ddof=1)) / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))  # Welch-Satterthwaite
    half = float(student_t.ppf(0.975, df)) * se
    return diff, diff - half, diff + half


def sentence(a: Side, b: Side) -> str:
    """One contrast in words: means, difference with its interval, verdict counts."""
    diff, lo, hi = welch(a, b)
    text = f"{a.label} FID-like {a.mean:.3g} against {b.label} {b.mean:.3g}: difference {diff:+.3g}"
    if math.isnan(lo):
        text += f" (n = {a.n}, {b.n}: too few seeds for an interval)"
    elif lo <= 0 <= hi:
        text += f" [{lo:+.3g}, {hi:+.3g}], not distinguishable at n = {a.n}, {b.n}"
    else:
        better = a.label if diff < 0 else b.label
        text += f" [{lo:+.3g}, {hi:+.3g}] at n = {a.n}, {b.n}: {better} is better"
    text += f"; verdict success {a.successes} against {b.successes}"
    if a.recognised is not None and b.recognised is not None:
        text += f", recognisable digits {a.recognised} against {b.recognised}"
    return text + "."


def _usable(final: pd.DataFrame) -> pd.DataFrame:
    """Finished trials with the metric, the positive control's left out (it answers no
    question: :mod:`analysis.control`)."""
    final = question_rows(final)
    ok = final[final["trial_status"].isin(SUMMARY_STATUSES)]
    return ok[ok[METRIC].notna()] if METRIC in ok else ok.iloc[0:0]


def _groups(frame: pd.DataFrame, held: tuple[str, ...]):
    """(" (the held fields that vary here)", rows) for each combination of ``held``."""
    cols = [c for c in held if c in frame and frame[c].notna().any()]
    if not cols:
        yield "", frame
        return
    for key, g in frame.groupby(cols, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        varying = [f"{c}={fmt(v)}" for c, v in zip(cols, key) if frame[c].nunique() > 1]
        yield (" (" + ", ".join(varying) + ")") if varying else "", g


def _side(g: pd.DataFrame, label: str) -> Side:
    verdicts = g[VERDICT] if VERDICT in g else pd.Series(dtype=float)
    return Side(label, g[METRIC], verdicts, g, g.get(LAX))


def _mean_text(side: Side) -> str:
    """``105 ± 12 (n = 2)``: a side's FID-like mean, its 95% t interval and n."""
    n, mean, half = mean_interval(side.values)
    return f"{plus_minus(mean, half, 3)} (n = {n})"


def rf_size(final: pd.DataFrame) -> list[Finding]:
    """Question 1: one conv layer, a trend over rf: every rf's mean in order, then the smallest
    rf against the largest (the notes' question is the trend, so no rf is pooled or left out)."""
    out = []
    for where, g in _groups(_usable(final[final["depth"] == 1]), held(final)):
        rfs = sorted(g["rf"].dropna().unique())
        if len(rfs) < 2:
            continue
        sides = [_side(g[g["rf"] == rf], f"rf {fmt(rf)}") for rf in rfs]
        trend = ", ".join(f"{s.label} {_mean_text(s)}" for s in sides)
        text = (
            f"One conv layer{where}, FID-like by rf: {trend}. Smallest against largest: "
            f"{sentence(sides[0], sides[-1])}"
        )
        out.append(Finding(text, tuple(sides)))
    return out


def _extremes(frame: pd.DataFrame, fixed: str, vary: str) -> list[Finding]:
    """Within each value of ``fixed`` (and the held fields): the smallest ``vary`` against the
    largest."""
    out = []
    for where, g in _groups(_usable(frame), (*held(frame), fixed)):
        values = sorted(g[vary].dropna().unique())
        if len(values) < 2:
            continue
        lo, hi = g[g[vary] == values[0]], g[g[vary] == values[-1]]
        a = _side(lo, f"{vary} {fmt(values[0])}")
        b = _side(hi, f"{vary} {fmt(values[-1])}")
        out.append(Finding(f"{fixed} {fmt(g[fixed].iloc[0])}{where}: {sentence(a, b)}", (a, b)))
    return out


def same_rf_depths(final: pd.DataFrame) -> list[Finding]:
    """Question 2: the same rf reached at different depths (rf-equivalent stacks)."""
    return _extremes(final, "rf", "depth")


def same_depth_rfs(final: pd.DataFrame) -> list[Finding]:
    """Question 3: at the same depth (> 1), the smallest rf against the largest."""
    return _extremes(final[final["depth"] > 1], "depth", "rf")


def d_params(side: Side) -> str:
    """The discriminator parameter count(s) of a side's trials ("6,353"; "89 to 120" where its
    configurations differ; "unknown" where no design.json said)."""
    rows = side.rows if side.rows is not None else pd.DataFrame()
    counts = sorted({int(v) for v in rows.get("params_d", pd.Series(dtype=float)).dropna()})
    if not counts:
        return "unknown"
    return f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,} to {counts[-1]:,}"


def heads(final: pd.DataFrame) -> list[Finding]:
    """Question 4: the same conv stack with the image (dense) head and the patch head. A dense
    head adds a weight per input pixel of its last feature map, so the two D's can differ many
    times over in size: each sentence says both counts."""
    out = []
    kept = tuple(c for c in held(final) if c != "head")
    for stack, by_stack in _usable(final).groupby("layers", sort=True):
        for where, g in _groups(by_stack, kept):
            image, patch = g[g["head"] == "image"], g[g["head"] == "patch"]
            if image.empty or patch.empty:
                continue
            a, b = _side(patch, "patch head"), _side(image, "image head")
            sizes = f" D parameters: patch head {d_params(a)}, image head {d_params(b)}."
            out.append(Finding(f"conv stack {stack}{where}: {sentence(a, b)}{sizes}", (a, b)))
    return out


QUESTIONS = (
    ("1. Does the rf size matter?", rf_size),
    ("2. Same rf, different depth (rf-equivalent stacks)", same_rf_depths),
    ("3. Same depth, different rf", same_depth_rfs),
    ("4. Image head vs patch head", heads),
)
NOTHING = "No trials in these experiments speak to it."


def answered(final: pd.DataFrame) -> list[tuple[str, list[Finding]]]:
    """(question, its findings) for each of the notes' questions; a question the data cannot
    speak to says so (a finding with no sides)."""
    out = []
    for title, answer in QUESTIONS:
        found = answer(final) if {"rf", "depth", "head"} <= set(final.columns) else []
        out.append((title, found or [Finding(NOTHING)]))
    return out


def findings(final: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """(question, its sentences) for each of the notes' questions."""
    return [(title, [f.text for f in found]) for title, found in answered(final)]
