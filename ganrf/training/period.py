"""The end of an evaluation period of :func:`ganrf.training.loop.train_pack`: which members
diverged, each live member's evaluation (its sample grid, its metrics) and the pack's report
with a checkpoint that exists only for the call."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor
from torch import device as Device

from ganrf.config import TrainConfig
from ganrf.models import sample
from ganrf.runs import REAL_GRID, SAMPLES_DIR, sample_grid_file
from ganrf.training.checkpoint import save_checkpoint
from ganrf.training.pack import Pack
from ganrf.training.stepper import Stepper

log = logging.getLogger(__name__)

PackReport = Callable[[list["dict[str, Any] | None"], "str | None"], None]


def flag_non_finite(bad: list[int | None], finite: list[bool], done: list[bool], step: int) -> None:
    """Losses can still be finite one step after an overflow; the weights are not. Mark such a
    live member diverged at the last step, so it is never evaluated (LAPACK aborts the process
    on NaN matrices)."""
    for i in range(len(bad)):
        if bad[i] is None and not finite[i] and not done[i]:
            bad[i] = step - 1


def end_period(
    pack: Pack,
    stepper: Stepper,
    configs: list[TrainConfig],
    done: list[bool],
    bad: list[int | None],
    common: dict[str, Any],
    step: int,
    total: int,
    evaluation: Evaluation,
) -> list[dict[str, Any] | None]:
    """Close the period that ended at ``step``: each member's metrics (:func:`period_metrics`,
    ``bad`` its first non-finite step or None), and the members that diverged in it frozen
    and marked ``done``."""
    flag_non_finite(bad, pack.weights_finite().tolist(), done, step)
    means = stepper.take_means()
    metrics = period_metrics(pack, configs, done, bad, means, common, step, total, evaluation)
    newly_dead = [i for i, m in enumerate(metrics) if m is not None and m["status"] == "diverged"]
    stepper.freeze(newly_dead)
    for i in newly_dead:
        done[i] = True
    return metrics


@dataclass
class Evaluation:
    """What evaluating a member needs: the device, each member's trial folder, fixed noise and
    metric evaluator."""

    device: Device
    outs: list[Path | None]
    noises: list[Tensor]
    evaluators: list[Any]


def period_metrics(
    pack: Pack,
    configs: list[TrainConfig],
    done: list[bool],
    bad: list[int | None],
    means: list,
    common: dict[str, Any],
    step: int,
    total: int,
    evaluation: Evaluation,
) -> list[dict[str, Any] | None]:
    """Each member's metrics for the period that ended at ``step``: its mean losses and either
    its divergence or its evaluation; None for a member that diverged earlier."""
    metrics: list[dict[str, Any] | None] = [None] * len(configs)
    for i, c in enumerate(configs):
        if done[i]:
            continue
        m = {"loss/d": means[i][0], "loss/g": means[i][1], **common}
        if bad[i] is not None:
            m |= {"status": "diverged", "diverged_step": bad[i]}
            log.warning("member %d: losses became non-finite at step %d", i, bad[i])
        else:
            t1 = time.perf_counter()
            g, d = pack.member(i)
            e = evaluation
            m |= evaluate_member(g, d, c, e.device, e.noises[i], e.outs[i], step, e.evaluators[i])
            m["time/eval_s"] = time.perf_counter() - t1
            m["status"] = "finished" if step >= total else "running"
        metrics[i] = m
    return metrics


def report_period(
    report: PackReport,
    metrics: list[dict[str, Any] | None],
    stepper: Stepper,
    configs: list[TrainConfig],
    step: int,
    done: list[bool],
) -> bool:
    """Report the period's ``metrics`` with a checkpoint of the pack that exists only for the
    call; False (stop training) when every member has diverged: nothing is worth a
    checkpoint."""
    if all(done):
        report(metrics, None)
        return False
    ckpt = Path(tempfile.mkdtemp(prefix="ganrf-ckpt-"))
    try:
        save_checkpoint(ckpt, configs=configs, step=step, state=stepper.state_dict())
        report(metrics, str(ckpt))
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
    return True


def evaluate_member(g, d, cfg, device, noise, out, step, evaluator) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if out is not None:
        from torchvision.utils import save_image

        grid = sample(g, noise)
        (out / SAMPLES_DIR).mkdir(exist_ok=True)
        path = out / sample_grid_file(step)
        nrow = max(1, int(len(grid) ** 0.5))
        save_image(grid, path, nrow=nrow, normalize=True, value_range=(-1, 1))
        result["artifact/samples"] = str(path.relative_to(out))
        real = out / SAMPLES_DIR / REAL_GRID
        if evaluator is not None and not real.exists():  # once: the digits to judge them by
            save_image(  # as many as the samples (real_images holds only eval.erf_images)
                evaluator.real_pixels[: len(grid)].float(),
                real,
                nrow=nrow,
                normalize=True,
                value_range=(0, 255),
            )
    if evaluator is not None:
        result |= evaluator(g=g, d=d, cfg=cfg, device=device, out_dir=out, step=step)
    return result
