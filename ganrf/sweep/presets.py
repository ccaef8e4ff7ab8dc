"""Sweep presets: a base training config and a default search space, per named preset.

A sweep script (``sweeps/*.py``) defines ``PRESETS`` with :class:`Preset` values (the RGB
scripts share one shape through :func:`rgb_presets`) and hands them to :func:`ganrf.sweep.cli.main`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganrf.sweep.experiments import EXPERIMENTS, QUESTIONS, RGB_DEFAULTS, Space


@dataclass(frozen=True)
class Preset:
    base: dict[str, Any]  # TrainConfig keys shared by every trial
    space: Space
    about: str  # one line for --help


def rgb_presets(
    *,
    dataset: str,
    image_size: int,
    data: dict[str, Any] | None = None,
    smoke: dict[str, Any],
    full: dict[str, Any],
    full_about: str,
) -> dict[str, Preset]:
    """The presets of an RGB sweep with the DCGAN generator (sweeps/celeba_rf.py,
    sweeps/imagenet_rf.py): ``smoke``, synthetic RGB images of the dataset's size, tiny models
    and no Inception metrics, seconds on a CPU; ``full``, every experiment at 3 seeds with
    DCGAN's Adam (2e-4, beta1 0.5) at batch 128.

    The per-experiment rf/depth/head grids are the dataset's
    (:data:`ganrf.sweep.experiments.RGB_DEFAULTS`); ``data`` adds data keys to both presets; ``smoke`` and ``full`` add (or override) each preset's keys.
    """
    rgb = {
        "data.dataset": dataset,
        "data.image_size": image_size,
        "data.channels": 3,
        "g.kind": "dcgan",
        **(data or {}),
    }

    def space(**kw: Any) -> Space:
        return Space(image_size=image_size, in_channels=3, defaults=RGB_DEFAULTS[dataset], **kw)

    return {
        "smoke": Preset(
            about=f"seconds on a CPU: synthetic {image_size}x{image_size} RGB images, tiny models, "
            "no Inception metrics",
            base={
                **rgb,
                "data.dataset": "synthetic",
                **smoke,
                "schedule.batch_size": 16,
                "schedule.steps": 4,
                "schedule.eval_every_steps": 2,
                "eval.metrics": False,
            },
            space=space(experiments=("onelayer",), rfs=(1, 5)),
        ),
        "full": Preset(
            about=full_about,
            base={
                **rgb,
                "schedule.batch_size": 128,
                **full,
                "optim.lr_g": 2e-4,
                "optim.lr_d": 2e-4,
                "optim.beta1": 0.5,
                "eval.samples": 10_000,
            },
            # No control: its verdicts (recognisable digits) are MNIST's alone.
            space=space(experiments=QUESTIONS, seeds=3),
        ),
    }


# What --data-root DIR must hold, per dataset (ganrf.data.sources reads it so).
DATA_LAYOUT = {
    "mnist": "DIR/MNIST/raw/ with the four *-ubyte (or *-ubyte.gz) files, downloaded there when "
    "missing",
    "celeba": "DIR/celeba/img_align_celeba/*.jpg (or images anywhere under DIR)",
    "imagenet": "DIR/train/<class>/<image> (the unpacked ILSVRC train folder) or "
    "DIR/<class>/<image>",
    "photo": "not read: the photographs ship inside scikit-image",
}


def preset_defaults(presets: dict[str, Preset], what: str) -> str:
    """Each preset's default for a sweep flag, for its --help: ``smoke 1,5; laptop 1,3,5,13``.

    ``what``: ``experiments``, ``rfs``, ``seeds`` or ``schedule`` (steps or epochs)."""
    shown = []
    for name, p in presets.items():
        if what == "experiments":
            value = ",".join(p.space.experiments)
            if p.space.experiments in (EXPERIMENTS, QUESTIONS):
                value = "all" if p.space.experiments == EXPERIMENTS else "every question"
        elif what == "rfs":
            value = ",".join(map(str, p.space.rfs)) if p.space.rfs else "each experiment's own"
        elif what == "seeds":
            value = str(p.space.seeds)
        else:
            steps = p.base.get("schedule.steps", 0)
            epochs = p.base.get("schedule.epochs", 50)  # TrainConfig's default
            value = f"{steps:,} steps" if steps else f"{epochs} epochs"
        shown.append(f"{name} {value}")
    return "; ".join(shown)


def preset_dataset(presets: dict[str, Preset]) -> str:
    """The real dataset a sweep's presets train on (its smoke preset's is synthetic)."""
    found = {p.base.get("data.dataset", "mnist") for p in presets.values()} - {"synthetic"}
    return found.pop() if len(found) == 1 else "mnist"
