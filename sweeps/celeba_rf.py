"""How the discriminator's receptive field changes what a CelebA (64x64) GAN learns.

    python sweeps/celeba_rf.py --data-root DATA --set eval.inception_weights=PATH   # GPUs
    ray submit cluster/gpu.yaml sweeps/celeba_rf.py -- --address auto --data-root /data/celeba
    python sweeps/celeba_rf.py --smoke-test            # seconds on a CPU, synthetic RGB images

DATA holds torchvision's CelebA layout (celeba/img_align_celeba/*.jpg) or a folder of aligned
faces. Metrics use Inception-V3 FID/KID: offline, pass its weights file (see docs/metrics.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from analysis.publish import publish  # noqa: E402
from ganrf.sweep.cli import main  # noqa: E402
from ganrf.sweep.presets import rgb_presets  # noqa: E402

PRESETS = rgb_presets(
    dataset="celeba",
    image_size=64,
    smoke={"data.synthetic_size": 128, "g.width": 0.0625, "d.width": 0.125},
    full={"schedule.epochs": 20, "schedule.eval_every": 2},
    full_about="GPUs: every experiment, 20 epochs at batch 128, DCGAN's Adam, 3 seeds",
)

if __name__ == "__main__":
    sys.exit(
        main(
            None,
            prog="celeba_rf.py",
            doc=__doc__,
            dataset="celeba",
            presets=PRESETS,
            default="full",
            publish=publish,
        )
    )
