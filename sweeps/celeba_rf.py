"""How the discriminator's receptive field changes what a CelebA (64x64) GAN learns.

    python sweeps/celeba_rf.py --data-root DATA --set eval.inception_weights=PATH   # GPUs
    ray submit cluster/gpu.yaml sweeps/celeba_rf.py -- --address auto --data-root /data/celeba
    python sweeps/celeba_rf.py --smoke-test            # seconds on a CPU, synthetic RGB images

DATA holds torchvision's CelebA layout (celeba/img_align_celeba/*.jpg) or a folder of aligned
faces. Metrics use Inception-V3 FID/KID: offline, pass its weights file (see README, Metrics).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from ganrf.experiments import EXPERIMENTS, Space  # noqa: E402
from ganrf.sweep import Preset, main  # noqa: E402

# rf grids for a 64 px face: from one pixel to half the image.
DEFAULTS = {
    "onelayer": {"rfs": (1, 3, 5, 9, 17, 33), "depths": (1,), "heads": ("image",)},
    "twolayers": {"rfs": (3, 5, 9, 17, 33), "depths": (2,), "heads": ("image",)},
    "same_depth": {"rfs": (5, 9, 17, 33), "depths": (3,), "heads": ("image",)},
    "same_rf": {"rfs": (9, 17), "depths": (1, 2, 3, 4), "heads": ("image",)},
    "heads": {"rfs": (9, 33), "depths": (1, 2), "heads": ("image", "patch")},
}
RGB64 = {"data.dataset": "celeba", "data.image_size": 64, "data.channels": 3, "g.kind": "dcgan"}

PRESETS = {
    "smoke": Preset(
        about="seconds on a CPU: synthetic 64x64 RGB images, tiny models, no Inception metrics",
        base={
            **RGB64,
            "data.dataset": "synthetic",
            "data.synthetic_size": 128,
            "g.width": 0.0625,
            "d.width": 0.125,
            "schedule.batch_size": 16,
            "schedule.steps": 4,
            "schedule.eval_every_steps": 2,
            "eval.metrics": False,
        },
        space=Space(
            experiments=("onelayer",), rfs=(1, 5), image_size=64, in_channels=3, defaults=DEFAULTS
        ),
    ),
    "full": Preset(
        about="GPUs: every experiment, 20 epochs at batch 128, DCGAN's Adam, 3 seeds",
        base={
            **RGB64,
            "schedule.batch_size": 128,
            "schedule.epochs": 20,
            "schedule.eval_every": 2,
            "optim.lr_g": 2e-4,
            "optim.lr_d": 2e-4,
            "optim.beta1": 0.5,
            "eval.samples": 10_000,
        },
        space=Space(
            experiments=EXPERIMENTS, seeds=3, image_size=64, in_channels=3, defaults=DEFAULTS
        ),
    ),
}

if __name__ == "__main__":
    sys.exit(
        main(
            None,
            prog="celeba_rf.py",
            doc=__doc__,
            dataset="celeba",
            presets=PRESETS,
            default="full",
        )
    )
