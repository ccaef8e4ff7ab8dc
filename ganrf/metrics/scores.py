"""Scores on feature vectors: Fréchet distance and KID (torchmetrics), precision/recall/density/
coverage (k-NN, Naeem et al.'s definitions), classifier score, class coverage, SSIM diversity.

Features are computed once per evaluation by whichever feature network fits the dataset (the
shipped MNIST evaluator, or Inception-V3) and every score here reads them, so no network runs
twice. torchmetrics' FID/KID are driven through a pass-through "feature extractor" for that.
Every tensor made here follows its inputs' device (the ``real`` features' device).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance


class PassThrough(nn.Module):
    """Hands torchmetrics already-computed features ``(N, D)`` as if it had extracted them."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def _finite(*features: Tensor) -> bool:
    return all(bool(torch.isfinite(f).all()) for f in features)


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID formula on feature sets, through torchmetrics (matrix square root included).

    NaN for non-finite features: LAPACK's eigen-solver aborts the whole process on them.
    """
    if not _finite(real, fake):
        return math.nan
    fid = FrechetInceptionDistance(feature=PassThrough(real.shape[1]), normalize=True)
    fid = fid.to(real.device)
    fid.update(real.double(), real=True)
    fid.update(fake.to(real.device).double(), real=False)
    return float(fid.compute())


def kid(
    real: Tensor, fake: Tensor, subsets: int = 20, subset_size: int = 1000
) -> tuple[float, float]:
    """Unbiased KID (Binkowski et al. 2018), mean and std over random subsets."""
    if not _finite(real, fake):
        return math.nan, math.nan
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # it keeps every feature: expected, 10k x 128 is 5 MB
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        k = KernelInceptionDistance(
            feature=PassThrough(real.shape[1]), subsets=subsets, subset_size=size, normalize=True
        )
    k = k.to(real.device)
    k.update(real.double(), real=True)
    k.update(fake.to(real.device).double(), real=False)
    mean, std = k.compute()
    if size == len(real) == len(fake):  # every subset is the whole set: one value, std 0
        return float(mean), 0.0  # (summed in another order, the std read 6e-16)
    return float(mean), float(std)


def _knn_radii(x: Tensor, k: int, chunk: int = 2048) -> Tensor:
    """Distance from each row to its k-th nearest other row."""
    radii = []
    for block in x.split(chunk):
        d = torch.cdist(block, x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # +1: the zero distance to itself
    return torch.cat(radii)


def prdc_tensors(real: Tensor, fake: Tensor, k: int = 5, chunk: int = 2048) -> dict[str, Tensor]:
    """:func:`prdc` as 0-d tensors on ``real``'s device (no host sync)."""
    real, fake = real.float(), fake.to(real.device).float()
    dev = real.device
    r_real, r_fake = _knn_radii(real, k, chunk), _knn_radii(fake, k, chunk)
    in_real = torch.zeros(len(fake), dtype=torch.bool, device=dev)
    density = torch.zeros(len(fake), device=dev)
    nearest_fake = torch.full((len(real),), math.inf, device=dev)
    for i, block in enumerate(fake.split(chunk)):
        d = torch.cdist(block, real)  # (b, N_real)
        inside = d < r_real[None]  # strict, as Naeem et al.'s reference code
        sl = slice(i * chunk, i * chunk + len(block))
        in_real[sl] = inside.any(1)
        density[sl] = inside.sum(1).float()
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    recall_hits = torch.zeros(len(real), dtype=torch.bool, device=dev)
    for i, block in enumerate(real.split(chunk)):
        d = torch.cdist(block, fake)
        recall_hits[i * chunk : i * chunk + len(block)] = (d < r_fake[None]).any(1)
    return {
        "precision": in_real.float().mean(),
        "recall": recall_hits.float().mean(),
        "density": density.sum() / (k * len(fake)),
        "coverage": (nearest_fake < r_real).float().mean(),
    }


def prdc(real: Tensor, fake: Tensor, k: int = 5, chunk: int = 2048) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020).

    The definitions of Naeem et al.'s ``prdc`` package: a sample is inside a ball when its
    distance is strictly less than the ball's radius, the distance from the ball's centre to its
    k-th nearest neighbour (itself excluded) in its own set.
    """
    return {name: v.item() for name, v in prdc_tensors(real, fake, k, chunk).items()}


def class_scores(probs: Tensor, confident: float = 0.9) -> dict[str, float]:
    """Classifier score (an Inception-Score analogue), class coverage and confidence.

    * ``classifier_score`` = exp(E_x KL(p(y|x) || p(y))): 10 for ten confident, balanced classes,
      1 for one class or for unsure predictions.
    * ``class_count``: classes holding at least 1% of the samples (10: all digits appear).
    * ``class_kl``: KL(class histogram || uniform); 0 balanced, log 10 = 2.30 one class.
    * ``confident_share``: samples whose top class has probability >= ``confident``.
    """
    probs = probs.double().clamp_min(1e-12)
    marginal = probs.mean(0)
    kl = (probs * (probs.log() - marginal.log())).sum(1).mean()
    n_classes = probs.shape[1]
    hist = torch.bincount(probs.argmax(1), minlength=n_classes).double() / len(probs)
    nz = hist > 0
    class_kl = (hist[nz] * (hist[nz] * n_classes).log()).sum()
    return {
        "classifier_score": kl.exp().item(),
        "class_count": int((hist >= 0.01).sum()),
        "class_kl": class_kl.item(),
        "confident_share": (probs.max(1).values >= confident).double().mean().item(),
    }


def mean_pairwise_ssim(images: Tensor, pairs: int = 500, seed: int = 0) -> float:
    """Mean SSIM (scikit-image) over random pairs of distinct samples in [-1, 1].

    High means the samples look alike: a collapsed generator scores near 1.
    """
    from skimage.metrics import structural_similarity

    x = images.detach().float().cpu().numpy()  # (N, C, H, W)
    rng = np.random.default_rng(seed)
    n = len(x)
    a = rng.integers(0, n, pairs)
    b = (a + rng.integers(1, n, pairs)) % n  # never the same sample
    values = [
        structural_similarity(
            x[i].transpose(1, 2, 0), x[j].transpose(1, 2, 0), data_range=2.0, channel_axis=2
        )
        for i, j in zip(a, b)
    ]
    return float(np.mean(values))
