"""Score reference image sets with the shipped MNIST evaluator: the README's calibration table.

    python scripts/metric_references.py --data-root DATA

10,000 training digits, the same blurred (Gaussian, sigma 1.5), uniform noise, and one digit
repeated with a little noise, each against the 10,000 test digits. Prints one line per set.
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision.transforms.functional as TF

from ganrf.config import TrainConfig
from ganrf.data import load_mnist, to_float
from ganrf.metrics import Evaluator

KEYS = [
    "fid",
    "kid_mean",
    "patch_fid",
    "precision",
    "recall",
    "class_count",
    "classifier_score",
    "confident_share",
    "ssim",
    "success",
]


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-root", default="data")
    args = p.parse_args()
    cfg = TrainConfig.from_dict({"data.root": args.data_root, "eval.samples": 10_000})
    ev = Evaluator(cfg, torch.device("cpu"))
    images, labels = load_mnist(args.data_root, train=True)
    real = to_float(images[:10_000])
    g = torch.Generator().manual_seed(0)
    one = real[labels[:10_000] == 3][:1].expand(10_000, -1, -1, -1)
    sets = {
        "training digits": real,
        "blurred (sigma 1.5)": TF.gaussian_blur(real, 5, 1.5),
        "uniform noise": torch.rand(real.shape, generator=g) * 2 - 1,
        "one digit repeated": (one + 0.05 * torch.randn(one.shape, generator=g)).clamp(-1, 1),
    }
    for name, images in sets.items():
        t0 = time.perf_counter()
        scores = ev.score_images(images)
        cells = " ".join(f"{k}={scores[f'metric/{k}']:.3g}" for k in KEYS)
        print(f"{name:22s} {cells} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
