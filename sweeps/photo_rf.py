"""How the discriminator's receptive field changes what a GAN reproduces of one photograph.

    python sweeps/photo_rf.py                       # laptop preset: crops of the astronaut
    python sweeps/photo_rf.py --smoke-test          # seconds on a CPU
    python sweeps/photo_rf.py --family resnet       # residual discriminators (SNGAN's recipe)
    python sweeps/photo_rf.py --set data.photo=coffee --rfs 7,25

Trains on random 32 px crops of a photograph scikit-image ships (data.photo: astronaut, chelsea,
coffee, rocket, hubble, ...; ganrf/data/photo.py), so it needs no data and no network. As in
SinGAN, a patch discriminator's rf decides the size of the structure the generator must get
right: the page shows each rf's samples beside real crops, and the multi-scale sliced
Wasserstein distance per pyramid level (metric/swd_l0: 7 px structure, swd_l1: 14 px, ...) says
at which scale each rf's samples differ from the photograph. No Inception network: the metrics
are SWD and SSIM, on pixels (eval.features=none).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from analysis.publish import publish  # noqa: E402
from ganrf.sweep.cli import main  # noqa: E402
from ganrf.sweep.experiments import PHOTO_DEFAULTS, Space  # noqa: E402
from ganrf.sweep.presets import Preset  # noqa: E402

CROP = 32
PHOTO = {
    "data.dataset": "photo",
    "data.photo": "astronaut",
    "data.photo_size": 128,  # a 32 px crop is a quarter of the picture's width
    "data.image_size": CROP,
    "data.channels": 3,
    "g.kind": "dcgan",
    "eval.features": "none",  # SWD and SSIM on pixels: nothing to download
    "optim.lr_g": 2e-4,
    "optim.lr_d": 2e-4,
    "optim.beta1": 0.5,
}
# Two stride-2 layers per design, both heads (ganrf.sweep.experiments.PHOTO_DEFAULTS).
SPACE = Space(
    experiments=("heads",),
    family="stride2",
    image_size=CROP,
    in_channels=3,
    stack_channels=32,
    defaults=PHOTO_DEFAULTS,
)

PRESETS = {
    "smoke": Preset(
        about="seconds on a CPU: 256 crops, tiny models, 4 steps, rf 4 and 25",
        base={
            **PHOTO,
            "data.crops": 256,
            "g.width": 0.0625,
            "d.width": 0.25,
            "schedule.batch_size": 16,
            "schedule.steps": 4,
            "schedule.eval_every_steps": 2,
            "eval.samples": 32,
            "eval.erf_images": 8,
        },
        space=replace(SPACE, rfs=(4, 25), heads=("patch",)),
    ),
    "laptop": Preset(
        about="the default: crops of the astronaut, rf 4, 7, 13, 25 with an image and a patch "
        "head, one seed; 12 min on 2 quiet CPU cores (measured)",
        base={
            **PHOTO,
            "g.width": 0.5,
            "schedule.batch_size": 64,
            "schedule.steps": 1200,
            "schedule.eval_every_steps": 600,
            "eval.samples": 1024,
        },
        space=SPACE,
    ),
    "full": Preset(
        about="GPUs: 64 px crops of a 256 px astronaut, rf 4 to 49, both heads, 3 seeds",
        base={
            **PHOTO,
            "data.photo_size": 256,
            "data.image_size": 64,
            "data.crops": 16_384,
            "schedule.batch_size": 128,
            "schedule.steps": 20_000,
            "schedule.eval_every_steps": 2000,
            "eval.samples": 10_000,
        },
        space=replace(SPACE, image_size=64, rfs=(4, 7, 13, 25, 49), stack_channels=64, seeds=3),
    ),
}

if __name__ == "__main__":
    sys.exit(
        main(
            None,
            prog="photo_rf.py",
            doc=__doc__,
            dataset="photo",
            presets=PRESETS,
            publish=publish,
        )
    )
