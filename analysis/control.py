"""The positive control: did the notes' own discriminator reach the verdicts in this run?

A verdict count such as "0 of 6 recognisable" says something about an rf only where some
discriminator *could* pass under the same schedule, data and metrics. The sweeps train the notes'
discriminator (``conv5s2,conv5s2``, rf 13, image head; ``ganrf.sweep.experiments.CONTROL``) on
seeds of its own beside the questions; this module reads its trials and says, per preset (a preset
fixes the schedule), whether it passed each verdict level. The rule is the one the schedule was
chosen by: a level passes when at least two thirds of the control's seeds reach it (2 of 3).

Trials that serve only the control are never part of a question's contrast
(:func:`question_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.stats import LAX, STRICT, SUMMARY_STATUSES
from ganrf.sweep.experiments import CONTROL, CONTROL_LAYERS

LEVELS = ((LAX, "recognisable digits"), (STRICT, "success (close to real digits)"))
DESCRIBED = f"the notes' discriminator ({CONTROL_LAYERS}: rf 13, image head)"


def is_control(frame: pd.DataFrame) -> pd.Series:
    """True for the rows of trials that serve the control alone."""
    if "experiment" not in frame:
        return pd.Series(False, index=frame.index)
    exps = frame["experiment"].fillna("").astype(str)
    return exps.map(lambda e: {x for x in e.split(",") if x} == {CONTROL}).astype(bool)


def question_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the notes' questions are answered from: every trial but the control's."""
    return frame[~is_control(frame)]


def passes(k: int, n: int) -> bool:
    """A level passes when at least two thirds of the seeds reach it (2 of 3; 2 of 2)."""
    return n > 0 and 3 * k >= 2 * n


@dataclass(frozen=True)
class Control:
    """The control of one preset: its finished trials' final rows and each level's count."""

    preset: str
    rows: pd.DataFrame
    counts: dict[str, tuple[int, int]]  # level column -> (seeds that reached it, seeds judged)

    def passed(self, level: str = LAX) -> bool:
        return passes(*self.counts.get(level, (0, 0)))

    def count(self, level: str) -> str:
        k, n = self.counts.get(level, (0, 0))
        return f"{k} of {n}"

    @property
    def shares(self) -> list[float]:
        return [float(v) for v in self.rows.get("metric/recognisable_share", pd.Series()).dropna()]


def _gives_verdicts(rows: pd.DataFrame) -> bool:
    return LAX in rows and rows[LAX].notna().any()


def controls(final: pd.DataFrame) -> dict[str, Control | None]:
    """Per preset whose trials were judged (the recognisable level measured): its control, or
    None where no control trial finished there."""
    if "preset" not in final or LAX not in final:
        return {}
    out: dict[str, Control | None] = {}
    ok = final[final["trial_status"].isin(SUMMARY_STATUSES)] if "trial_status" in final else final
    for preset, rows in final.groupby(final["preset"].fillna(""), sort=True):
        if not _gives_verdicts(rows):
            continue
        mine = ok[(ok["preset"].fillna("") == preset) & is_control(ok)]
        mine = mine[mine[LAX].notna()]
        if mine.empty:
            out[str(preset)] = None
            continue
        counts = {
            col: (int((mine[col] == 1).sum()), int(mine[col].notna().sum()))
            for col, _ in LEVELS
            if col in mine
        }
        out[str(preset)] = Control(str(preset), mine, counts)
    return out


def sentence(preset: str, control: Control | None) -> str:
    """What the control says about one preset's verdicts, in one or two sentences."""
    where = f"Preset {preset}: " if preset else ""
    if control is None:
        return (
            where + f"no positive control trained ({DESCRIBED}, --experiments control): a "
            "verdict of 0 of N cannot be told from a schedule too short for any discriminator, "
            "so the verdicts of this run cannot say which rf works."
        )
    lax, strict = control.count(LAX), control.count(STRICT)
    shares = ", ".join(f"{s:.2f}" for s in control.shares)
    text = (
        where + f"the control, {DESCRIBED}, drew recognisable digits in {lax} seeds "
        f"(share of recognisable samples {shares}) and passed the strict success level in "
        f"{strict}. "
    )
    if not control.passed(LAX):
        return (
            text + "The control did not pass: the verdicts of this run cannot say which rf works."
        )
    text += "The control passed the recognisable level: this run's recognisable verdicts can say which rf works"
    if not control.passed(STRICT):
        text += "; it did not pass the success level, so the success verdicts cannot"
    return text + "."


def banner(final: pd.DataFrame) -> list[tuple[bool, str]]:
    """(passed the recognisable level, sentence) per judged preset, for the top of the page and
    the findings; empty where nothing was judged."""
    return [(c is not None and c.passed(LAX), sentence(p, c)) for p, c in controls(final).items()]
