"""``metric/recognisable``: the second, laxer level — "a number appears" (issue 20).

A sample is a *recognisable digit* when, its ink binarised (:func:`binarise`), every one of ``JUDGES`` small CNN classifiers, trained
with different seeds on real training digits only (``scripts/train_judges.py``), names the same
class, each with at least the confidence it gives 99% of held-out real digits, and each finds the
sample's penultimate features within the Mahalanobis radius (to the named class's mean, shared
covariance; Lee et al. 2018) that holds 99% of held-out real digits. Every per-sample threshold
comes from real digits; no calibration case trains or thresholds anything per sample.

A *set* is recognisable (``metric/recognisable`` = 1) when its share of recognisable samples is
at least ``SHARE_MIN`` and at least ``MIN_CLASSES`` digit classes each hold ``CLASS_MIN_SHARE``
of its recognised samples (so one digit repeated fails). ``SHARE_MIN`` is the one number the
calibration cases choose: the midpoint of the margin printed by
``scripts/calibrate_recognisable.py`` (docs/metrics.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor, nn

from ganrf.metrics.spec import RECOGNISABLE_MIN_CLASSES, RECOGNISABLE_SHARE_MIN

WEIGHTS = Path(__file__).parent / "weights" / "judges.pt"
CARD = WEIGHTS.with_suffix(".json")
JUDGES = 3
SEEDS = (1, 2, 3)
FEATURES = 64
SPLIT_SEED = 2016  # the training-split permutation (as the evaluator's REFERENCE_SEED)
TRAIN_DIGITS = slice(30_000, 55_000)  # perm[30000:55000]: the judges' training digits
THRESHOLD_DIGITS = slice(55_000, 60_000)  # perm[55000:]: held-out digits that set the radii
REAL_QUANTILE = 0.99  # the share of held-out real digits each per-sample threshold keeps
# Fixed by scripts/calibrate_recognisable.py (docs/metrics.md): the midpoint between the worst
# recognisable case's share and the best share of a no-number case that meets the class rule.
# Kept in the torch-free registry, whose charts draw it.
SHARE_MIN = RECOGNISABLE_SHARE_MIN
MIN_CLASSES = RECOGNISABLE_MIN_CLASSES
CLASS_MIN_SHARE = 0.025


class JudgeNet(nn.Module):
    """conv16-pool-conv32-pool-conv64-pool-fc64-fc10 with BatchNorm; inputs in [-1, 1].

    Smaller than the evaluator (about 2 MFLOP per image): three of them score 10,000 samples in
    seconds on a CPU.
    """

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(True),
                nn.MaxPool2d(2),
            ]

        self.body = nn.Sequential(
            *block(1, 16),  # (B, 16, 14, 14)
            *block(16, 32),  # (B, 32, 7, 7)
            *block(32, 64),  # (B, 64, 3, 3)
            nn.Flatten(),
            nn.Linear(64 * 3 * 3, FEATURES, bias=False),
            nn.BatchNorm1d(FEATURES),
            nn.ReLU(True),
        )
        self.classify = nn.Linear(FEATURES, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.body(x))


def binarise(x: Tensor) -> Tensor:
    """Each image's ink as {-1, 1}: pixels brighter than half the image's brightest one.

    Recognisable is a matter of shape, not of grey levels: a judge that sees only crisp training
    digits names a faint, blurred digit "1" (the first judges, trained on grey digits, named
    90-99% of blurred digits so).
    Thresholding at half the maximum keeps a blurred stroke's core at about its original width
    (a Gaussian's full width at half maximum), and it is the same fixed map for every input, real
    digits included: the judges are trained and thresholded on binarised real digits.
    """
    x01 = (x + 1) / 2  # (N, 1, 28, 28) in [0, 1]
    peak = x01.amax(dim=(1, 2, 3), keepdim=True)
    return torch.where(x01 > peak / 2, 1.0, -1.0).to(x.dtype)


@dataclass
class Judge:
    """One judge and its thresholds, set on held-out real digits."""

    net: JudgeNet
    means: Tensor  # (10, FEATURES) class means of the training digits' features
    precision: Tensor  # (FEATURES, FEATURES) inverse of the shared (shrunk) covariance
    radius: float  # Mahalanobis radius holding REAL_QUANTILE of held-out real digits
    min_confidence: float  # top-class probability REAL_QUANTILE of them reach

    @torch.no_grad()
    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Class, top probability and Mahalanobis distance to that class's mean, each ``(N,)``, of
        images ``(N, 1, 28, 28)`` in [-1, 1] (binarised first)."""
        out = [], [], []
        for b in binarise(x).split(1000):
            f = self.net.body(b)
            p = self.net.classify(f).softmax(1)
            conf, cls = p.max(1)
            d = f - self.means[cls]
            dist = ((d @ self.precision) * d).sum(1).clamp_min(0).sqrt()
            for acc, v in zip(out, (cls, conf, dist)):
                acc.append(v)
        cls, conf, dist = (torch.cat(v) for v in out)
        return cls, conf, dist

    def accepts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Class ``(N,)`` and whether this judge accepts the sample as a digit ``(N,)``."""
        cls, conf, dist = self(x)
        return cls, (conf >= self.min_confidence) & (dist <= self.radius)


def class_statistics(feats: Tensor, labels: Tensor, shrink: float = 0.01):
    """Class means ``(10, D)`` and the precision of the shared covariance, shrunk towards a
    multiple of the identity (``shrink`` of its mean variance) so that it inverts stably."""
    means = torch.stack([feats[labels == c].mean(0) for c in range(10)]).double()
    centred = feats.double() - means[labels]
    cov = centred.T @ centred / (len(feats) - 10)
    cov += shrink * cov.diagonal().mean() * torch.eye(cov.shape[0], dtype=cov.dtype)
    return means.float(), torch.linalg.inv(cov).float()


def split_permutation(n: int = 60_000) -> Tensor:
    """The fixed permutation of the training split: judges, thresholds and cases take disjoint
    slices of it (``TRAIN_DIGITS``, ``THRESHOLD_DIGITS``, ``cases.CASE_DIGITS``)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=2)
def load_judges(device: str = "cpu") -> tuple[Judge, ...]:
    """The shipped judges, their file checked against the recorded sha256."""
    if not WEIGHTS.exists() or not CARD.exists():
        raise FileNotFoundError(
            f"the recognisability judges are missing ({WEIGHTS}); reinstall gan_rf or run "
            "scripts/train_judges.py"
        )
    if sha256(WEIGHTS) != json.loads(CARD.read_text())["sha256"]:
        raise RuntimeError(
            f"{WEIGHTS} does not match its recorded sha256; verdicts would not compare across "
            "machines: reinstall gan_rf"
        )
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    judges = []
    for s in state["judges"]:
        net = JudgeNet()
        net.load_state_dict(s["net"])
        net = net.eval().requires_grad_(False).to(device)
        judges.append(
            Judge(
                net,
                s["means"].to(device),
                s["precision"].to(device),
                float(s["radius"]),
                float(s["min_confidence"]),
            )
        )
    return tuple(judges)


def judge_samples(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per sample: recognisable ``(N,)`` bool and the agreed class ``(N,)`` (-1 where none).

    Args:
        x: images ``(N, 1, 28, 28)`` in [-1, 1], white ink on black.
    """
    assert x.dim() == 4 and tuple(x.shape[1:]) == (1, 28, 28), x.shape
    judges = load_judges(str(x.device) if x.device.type != "cpu" else "cpu")
    verdicts = [j.accepts(x.float()) for j in judges]
    cls = verdicts[0][0]
    ok = torch.ones_like(cls, dtype=torch.bool)
    for c, accepted in verdicts:
        ok &= accepted & (c == cls)
    return ok.cpu(), torch.where(ok, cls, -1).cpu()


def set_verdict(ok: Tensor, cls: Tensor) -> dict[str, float | int]:
    """The set-level report keys from per-sample verdicts (module doc)."""
    share = float(ok.double().mean()) if len(ok) else 0.0
    recognised = cls[ok]
    classes = 0
    if len(recognised):
        hist = torch.bincount(recognised, minlength=10).double() / len(recognised)
        classes = int((hist >= CLASS_MIN_SHARE).sum())
    return {
        "metric/recognisable": int(share >= SHARE_MIN and classes >= MIN_CLASSES),
        "metric/recognisable_share": share,
        "metric/recognisable_classes": classes,
    }


def recognisable_metrics(x: Tensor) -> dict[str, float | int]:
    """``metric/recognisable``, ``_share`` and ``_classes`` for images ``(N, 1, 28, 28)`` in
    [-1, 1]."""
    return set_verdict(*judge_samples(x))
