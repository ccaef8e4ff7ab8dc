"""How the discriminator's receptive field changes what an ImageNet (128x128) GAN learns.

    ray up cluster/gpu.yaml
    ray submit cluster/gpu.yaml sweeps/imagenet_rf.py -- --address auto \
        --data-root /data/imagenet --storage-path s3://BUCKET/gan_rf
    python sweeps/imagenet_rf.py --set data.image_size=64 ...   # the 64 px variant
    python sweeps/imagenet_rf.py --smoke-test                   # seconds on a CPU, synthetic

DATA is the unpacked ILSVRC train folder (DATA/train/<class>/*.JPEG) or any class-folder tree; it
streams from disk with DataLoader workers. Metrics use Inception-V3 FID/KID (see docs/metrics.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install

from analysis.publish import publish  # noqa: E402
from ganrf.sweep.cli import main  # noqa: E402
from ganrf.sweep.presets import rgb_presets  # noqa: E402

PRESETS = rgb_presets(
    dataset="imagenet",
    image_size=128,
    data={"data.workers": 8},  # streams from disk
    smoke={"data.synthetic_size": 64, "g.width": 0.0625, "d.width": 0.0625},
    full={"schedule.epochs": 10, "schedule.eval_every": 1},
    full_about="GPU cluster: every experiment, 10 epochs at batch 128, DCGAN's Adam, 3 seeds",
)

if __name__ == "__main__":
    sys.exit(
        main(
            None,
            prog="imagenet_rf.py",
            doc=__doc__,
            dataset="imagenet",
            presets=PRESETS,
            default="full",
            publish=publish,
        )
    )
