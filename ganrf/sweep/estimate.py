"""``--dry-run --estimate``: what a sweep will cost on this machine, before it starts.

A sweep's cost is set by its most expensive discriminators, and those are easy to miss: a
stride-1 stack of three 5x5 convs at 64 channels on 28x28 MNIST costs about 20x the laptop
preset's rf-1 trial per step, so the notes' four questions at laptop scale take tens of hours on a
2-core machine whose laptop preset takes minutes. This times a few training steps of each distinct
packed trial of the grid (seeds share one timing: they cost the same) and one evaluation per
distinct generator and evaluation setting, then projects the sweep's wall time with its packed
trials run one after another, as a CPU-only machine runs them (every core per trial). With several
trials at once (GPUs, a cluster) divide by how many run at once.
"""

from __future__ import annotations

import copy
import math
import os
import sys
from dataclasses import dataclass
from typing import TextIO

from ganrf.sweep.trial import Trial, pack_name

TIMED_STEPS = 5


@dataclass
class PackCost:
    """One distinct packed trial's measured cost and what the sweep asks of it."""

    name: str  # the first such pack's name
    count: int  # packs of the sweep with these configs but for their seeds
    s_per_step: float
    steps: int  # training steps of one such pack
    evaluations: int  # per member
    eval_s: float  # one evaluation of one member
    members: int = 1

    @property
    def seconds(self) -> float:
        """One such packed trial: its steps, then every member's evaluations."""
        return self.steps * self.s_per_step + self.evaluations * self.eval_s * self.members

    @property
    def total_s(self) -> float:
        return self.count * self.seconds


def _unseeded(trial: Trial) -> tuple:
    flat = trial.config.to_dict()
    flat.pop("seed", None)
    return tuple(sorted(flat.items()))


def _eval_key(trial: Trial) -> tuple:
    flat = trial.config.to_dict()
    return tuple(
        sorted((k, v) for k, v in flat.items() if k.split(".")[0] in ("g", "eval", "data"))
    )


def schedule(trial: Trial, steps_per_epoch: int) -> tuple[int, int]:
    """(training steps, evaluations) of a trial, as :func:`ganrf.training.loop.train_pack`
    counts them: an evaluation ends every period, the last one possibly short."""
    s = trial.config.schedule
    total = s.steps or s.epochs * steps_per_epoch
    period = s.eval_every_steps or s.eval_every * steps_per_epoch
    return total, math.ceil(total / period)


def time_pack(pack: list[Trial], steps: int = TIMED_STEPS) -> tuple[float, int]:
    """Seconds per training step of ``pack`` on its device, timed over ``steps`` steps (at least
    :data:`TIMED_STEPS`, which the command line enforces) after the loop's own warm-up, without
    evaluations; and the data's steps per epoch."""
    from ganrf.training.loop import WARMUP_STEPS, train_pack

    assert WARMUP_STEPS < TIMED_STEPS  # the loop times a period only if it is longer than this
    configs = []
    for t in pack:
        c = copy.deepcopy(t.config)  # keeps the carried design
        c.schedule.steps = c.schedule.eval_every_steps = WARMUP_STEPS + max(steps, TIMED_STEPS)
        c.eval.metrics = False
        configs.append(c)
    out = train_pack(configs)[0]
    spe = int(out["progress/steps_per_epoch"])
    return out["time/epoch_s"] / spe, spe


def time_evaluation(trial: Trial) -> float:
    """Seconds of one evaluation of ``trial``'s models, its one-time reference statistics left
    out (:func:`ganrf.metrics.evaluate.seconds_per_evaluation`)."""
    from ganrf.metrics.evaluate import seconds_per_evaluation
    from ganrf.training.loop import build_models, pick_device

    cfg = trial.config
    if not cfg.eval.metrics:
        return 0.0
    device = pick_device(cfg.device)
    g, d = build_models(cfg, device)
    return seconds_per_evaluation(cfg, g, d, device, design=trial.design)


def estimate(
    packs: list[list[Trial]],
    *,
    steps: int = TIMED_STEPS,
    log: TextIO | None = None,
    timer=time_pack,
    eval_timer=time_evaluation,
) -> list[PackCost]:
    """Each distinct packed trial of ``packs`` timed once (progress on ``log``, default
    stderr)."""
    log = log or sys.stderr  # looked up now: a caller may have redirected it
    groups: dict[tuple, list[list[Trial]]] = {}
    for p in packs:
        groups.setdefault(tuple(_unseeded(t) for t in p), []).append(p)
    eval_cost: dict[tuple, float] = {}
    costs = []
    for i, same in enumerate(groups.values(), 1):
        pack = same[0]
        name = pack_name(pack)
        print(f"timing {i}/{len(groups)}: {name}", file=log, flush=True)
        s_per_step, spe = timer(pack, steps)
        key = _eval_key(pack[0])
        if key not in eval_cost:
            eval_cost[key] = eval_timer(pack[0])
        total, evaluations = schedule(pack[0], spe)
        costs.append(
            PackCost(name, len(same), s_per_step, total, evaluations, eval_cost[key], len(pack))
        )
    return costs


def hours(seconds: float) -> str:
    """``42 s``, ``7.5 min`` or ``49.2 h``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def busy(cores: int | None = None) -> str | None:
    """A warning when other work already loads this machine: the timings would read high (a
    helper's tests beside a sweep's trial made one read 0.84 s/step for a 0.12 s step)."""
    cores = cores or os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return None
    if load <= 0.5 * cores:
        return None
    return (
        f"warning: this machine is already busy (load {load:.1f} on {cores} cores), so the "
        f"timings read high; estimate on a quiet machine"
    )


def print_estimate(
    costs: list[PackCost], device: str, steps: int = TIMED_STEPS, out: TextIO | None = None
) -> float:
    """The table (one row per distinct packed trial: how many the sweep has, seconds per step,
    steps, evaluations per member, seconds per evaluation, and the time of one) and the
    projected wall time, in seconds; on ``out``, default stdout."""
    out = out or sys.stdout  # looked up now: a caller may have redirected it
    width = max(len("packed trial"), *(len(c.name) for c in costs))
    print(f"{'packed trial':<{width}}  count  s/step  steps  evals  eval s      each", file=out)
    for c in costs:
        print(
            f"{c.name:<{width}}  {c.count:>5}  {c.s_per_step:>6.3f}  {c.steps:>5}  "
            f"{c.evaluations:>5}  {c.eval_s:>6.1f}  {hours(c.seconds):>8}",
            file=out,
        )
    total = sum(c.total_s for c in costs)
    n = sum(c.count for c in costs)
    print(
        f"projected wall time on this machine ({device}), {n} packed trials one after another: "
        f"{hours(total)} (timed over {max(steps, TIMED_STEPS)} steps each after warm-up; with k trials "
        f"at once, about 1/k of it)",
        file=out,
    )
    return total
