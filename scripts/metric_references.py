"""Score calibration cases with the shipped MNIST evaluator: the calibration table of docs/metrics.md.

    python scripts/metric_references.py --data-root DATA [--samples 10000]

Every case is n images scored against the evaluator's reference set (a fixed random subset of n
test digits). The cases were fixed before any sweep and define ``metric/success``:

* success: real training digits (disjoint from the floor's subset) and held-out test digits
  (disjoint from the reference; only where 2 n fits the 10,000 test digits);
* failure: the training digits Gaussian-blurred (sigma 1.5); uniform noise; one digit repeated
  with a little noise; mixtures of digit fragments (the four 14x14 quadrants of four different
  digits); blobs (a smoothed, thresholded random field inside a digit-sized window, with the real
  digits' ink share); independent pixels (every pixel drawn from that pixel's real marginal: all
  a 1x1 discriminator can enforce).

With ``--generators 1,5``, two trained generators are scored too (about 3 min each on 2 CPU cores,
cached in ``$GANRF_CACHE``): the laptop preset's onelayer rf-1 and rf-5 discriminators' generators
(real MNIST, seed 0, 3,000 steps). The rf-1 generator draws blobs: a failure case. The rf-5 one is
shown for reference, not a calibration case.

Prints a Markdown table (one row per case, the rule's verdict last) and the margins of the rule.
"""

from __future__ import annotations

import argparse

import torch
import torchvision.transforms.functional as TF

from ganrf.config import TrainConfig
from ganrf.data import load_mnist, to_float
from ganrf.metrics import evaluation, features
from ganrf.metrics.evaluate import Evaluator
from ganrf.metrics.features import _permuted

COLUMNS = [  # (report key, header, format)
    ("fid", "FID-like", ".3g"),
    ("fid_over_floor", "FID / floor", ".3g"),
    ("local_fid", "local FID", ".3g"),
    ("kid_mean", "KID", ".3g"),
    ("precision", "precision", ".2f"),
    ("recall", "recall", ".2f"),
    ("coverage", "coverage", ".2f"),
    ("density", "density", ".2f"),
    ("class_count", "classes", "d"),
    ("classifier_score", "cls score", ".2f"),
    ("confident_share", "p≥0.9", ".2f"),
    ("ssim", "SSIM", ".2f"),
    ("success", "success", "d"),
]


def quadrant_mixtures(digits: Tensor, g: torch.Generator) -> Tensor:
    """Each image stitched from the four 14x14 quadrants of four random digits."""
    n, _, h, w = digits.shape
    out = torch.empty_like(digits)
    for ys in (slice(0, h // 2), slice(h // 2, h)):
        for xs in (slice(0, w // 2), slice(w // 2, w)):
            pick = torch.randint(0, n, (n,), generator=g)
            out[:, :, ys, xs] = digits[pick][:, :, ys, xs]
    return out


def blobs(n: int, ink: float, g: torch.Generator) -> Tensor:
    """Smoothed random fields, thresholded to the real ink share inside a digit-sized window."""
    field = TF.gaussian_blur(torch.randn(n, 1, 28, 28, generator=g), 9, 2.0)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    window = torch.exp(-(((yy - 13.5) / 7) ** 2 + ((xx - 13.5) / 5) ** 2) / 2)
    field = field * window
    cut = field.flatten(1).quantile(1 - ink, dim=1)[:, None, None, None]
    img = (field > cut).float()
    return TF.gaussian_blur(img, 3, 0.7) * 2 - 1


def independent_pixels(digits: Tensor, g: torch.Generator) -> Tensor:
    """Every pixel drawn independently from that pixel's values over ``digits``."""
    n = len(digits)
    flat = digits.flatten(1)  # (n, 784)
    pick = torch.randint(0, n, flat.shape, generator=g)
    return flat.gather(0, pick).view_as(digits)


Tensor = torch.Tensor


def cases(root: str, n: int) -> dict[str, tuple[bool, Tensor]]:
    """name -> (should succeed, images in [-1, 1])."""
    train, labels = load_mnist(root, train=True, download=False)
    test, _ = load_mnist(root, train=False, download=False)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(
        len(train), generator=torch.Generator().manual_seed(features.REFERENCE_SEED)
    )
    real = to_float(train[perm[n : 2 * n]])  # the floor uses perm[:n]
    digit_labels = labels[perm[n : 2 * n]]
    out: dict[str, tuple[bool, Tensor]] = {"training digits": (True, real)}
    if 2 * n <= len(test):
        out["held-out test digits"] = (True, to_float(_permuted(test)[n : 2 * n]))
    one = real[digit_labels == 3][:1].expand(n, -1, -1, -1)
    ink = float((real > 0).float().mean())
    out |= {
        "blurred digits (σ 1.5)": (False, TF.gaussian_blur(real, 5, 1.5)),
        "uniform noise": (False, torch.rand(real.shape, generator=g) * 2 - 1),
        "one digit repeated": (
            False,
            (one + 0.05 * torch.randn(one.shape, generator=g)).clamp(-1, 1),
        ),
        "quadrants of 4 digits": (False, quadrant_mixtures(real, g)),
        "blobs (digit ink share)": (False, blobs(n, ink, g)),
        "independent pixels": (False, independent_pixels(real, g)),
    }
    return out


LAPTOP = {  # sweeps/mnist_rf.py's laptop preset, for one onelayer trial
    "g.width": 0.25,
    "schedule.batch_size": 64,
    "schedule.steps": 3000,
    "optim.lr_g": 2e-4,
    "optim.lr_d": 2e-4,
    "optim.beta1": 0.5,
    "d.dropout": 0.0,
    "eval.metrics": False,
    "seed": 0,
}


def generator_samples(root: str, rf: int, n: int) -> Tensor:
    """n samples of the laptop preset's onelayer rf-``rf`` generator (trained once, cached)."""
    from ganrf.models import sample
    from ganrf.models.generators import generator_for
    from ganrf.training.checkpoint import load_checkpoint
    from ganrf.training.loop import train

    cfg = TrainConfig.from_dict(
        LAPTOP | {"data.root": root, "data.download": False, "d.layers": f"conv{rf}"}
    )
    g = generator_for(cfg)
    path = features.cache_dir() / f"calibration-laptop-rf{rf}-g.pt"
    if path.exists():
        g.load_state_dict(torch.load(path, weights_only=True))
    else:
        kept: dict = {}

        def report(metrics, ckpt):
            if ckpt is not None and metrics.get("status") == "finished":
                kept["g"] = load_checkpoint(ckpt)["g"]

        train(cfg, report)
        g.load_state_dict(kept["g"])
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(kept["g"], path)
    noise = torch.randn(n, cfg.g.noise_dim, generator=torch.Generator().manual_seed(20_000))
    return sample(g.eval(), noise).detach()


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-root", default="data")
    p.add_argument("--samples", type=int, default=10_000, help="n, as eval.samples")
    p.add_argument(
        "--generators",
        default="",
        help="comma-separated rfs of laptop-preset generators to train and score, e.g. 1,5",
    )
    args = p.parse_args()
    n = args.samples
    cfg = TrainConfig.from_dict(
        {"data.root": args.data_root, "data.download": False, "eval.samples": n}
    )
    ev = Evaluator(cfg, torch.device("cpu"))
    print(f"n = {n:,}; FID floor (n training digits vs the reference) = {ev.fid_floor:.3g}\n")
    print("| case | expected | " + " | ".join(h for _, h, _ in COLUMNS) + " |")
    print("| --- | --- |" + " --- |" * len(COLUMNS))
    rows = {}
    todo: dict[str, tuple[bool | None, Tensor]] = dict(cases(args.data_root, n))
    for rf in (int(r) for r in args.generators.split(",") if r.strip()):
        expected = False if rf == 1 else None  # rf 1 draws blobs; the others are no case
        name = "laptop rf-1 generator (blobs)" if rf == 1 else f"laptop rf-{rf} generator"
        todo[name] = (expected, generator_samples(args.data_root, rf, n))
    for name, (expected, images) in todo.items():
        s = ev.score_images(images)
        rows[name] = (expected, s)
        cells = " | ".join(format(s[f"metric/{k}"], f) for k, _, f in COLUMNS)
        verdict = {True: "success", False: "failure", None: "(not a case)"}[expected]
        print(f"| {name} | {verdict} | {cells} |")
    print(
        f"\nrule: success = FID/floor <= {evaluation.SUCCESS_FID_OVER_FLOOR} and precision >= "
        f"{evaluation.SUCCESS_PRECISION} and coverage >= {evaluation.SUCCESS_COVERAGE}"
    )
    wrong = [k for k, (e, s) in rows.items() if e is not None and s["metric/success"] != int(e)]
    for key in ("fid_over_floor", "precision", "coverage", "local_fid"):
        ok = [s[f"metric/{key}"] for e, s in rows.values() if e]
        bad = [s[f"metric/{key}"] for e, s in rows.values() if e is False]
        print(
            f"{key}: successes {min(ok):.3g}..{max(ok):.3g}, failures {min(bad):.3g}..{max(bad):.3g}"
        )
    print("every case as expected" if not wrong else f"MISJUDGED: {', '.join(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
