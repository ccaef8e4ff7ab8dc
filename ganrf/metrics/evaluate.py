"""The evaluator: every trial's scores, computed every evaluation period.

:class:`Evaluator` generates ``eval.samples`` images from fixed noise, computes their features
once with the dataset's feature network, and scores them against cached reference features of
the real test split:

* ``metric/fid``: Fréchet distance of the feature network's features (``metric/feature_net``
  names it: the shipped MNIST CNN for 28x28 digits, Inception-V3 for RGB);
* ``metric/kid_mean``, ``metric/kid_std``; ``metric/precision``, ``recall``, ``density``,
  ``coverage`` (k = 5);
* ``metric/patch_fid``: Fréchet distance on random half-size crops (local texture, not layout);
* ``metric/ssim``: mean pairwise SSIM of samples (high = alike, a collapse);
* with a classifier (MNIST): ``metric/classifier_score``, ``class_count``, ``class_kl``,
  ``confident_share`` and ``metric/success``;
* ``erf/radius50``, ``erf/radius95`` (and ``erf/size50``, ``erf/size95`` = 2 r + 1, beside
  ``rf/conv`` and ``rf/decision``), with the ERF map saved as an image.

**Success** (the notes' yes/no column: "did it generate digits?") is 1 when the classifier
score is at least ``SUCCESS_CLASSIFIER_SCORE`` *and* all ten digit classes appear
(``class_count`` = 10). Calibrated on real MNIST (README, "Metrics"): real digits 9.7, blurred
digits 4.4 (recognisable, yes), noise and a one-digit collapse 1.0, a 1x1 discriminator's blobs
2.6-2.7 (no), a 5x5's first recognisable digits 3.8-4.0 (yes). The FID-like score is not part of
it: blur alone moves it from 0.5 to 60 while the digits stay readable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganrf.designs import DiscriminatorDesign
from ganrf.metrics import scores
from ganrf.metrics.erf import ERF, effective_rf
from ganrf.metrics.spec import INFO_KEYS, METRICS
from ganrf.models import sample

log = logging.getLogger(__name__)

SUCCESS_CLASSIFIER_SCORE = 3.0
SUCCESS_CLASSES = 10
PATCH_FRACTION = 0.5  # Patch-FID crops are half the image side
PRDC_MAX = 5000  # k-NN scores on at most this many samples each side (O(N^2) distances)


class MetricsError(RuntimeError):
    """A feature network or reference set that cannot be had; the message says how to get it."""


def cache_dir() -> Path:
    return Path(os.environ.get("GANRF_CACHE", Path.home() / ".cache" / "ganrf"))


class FeatureNet:
    """A feature network: ``features(x)`` for x in [-1, 1], optional ``probs(x)``, a name."""

    def __init__(
        self,
        name: str,
        features: Callable[[Tensor], Tensor],
        probs_from_features: Callable[[Tensor], Tensor] | None = None,
        batch: int = 500,
    ) -> None:
        self.name, self._features, self._probs, self.batch = (
            name,
            features,
            probs_from_features,
            batch,
        )

    @torch.no_grad()
    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        feats = torch.cat([self._features(b).float() for b in x.split(self.batch)])
        probs = self._probs(feats).softmax(1) if self._probs is not None else None
        return feats.cpu(), (probs.cpu() if probs is not None else None)


def mnist_feature_net(device: torch.device) -> FeatureNet:
    from ganrf.metrics.mnist_cnn import evaluator_id, load_evaluator

    net = load_evaluator(str(device))
    return FeatureNet(evaluator_id(), lambda x: net.features(x.to(device)), net.classify)


def inception_feature_net(device: torch.device, weights: str = "") -> FeatureNet:
    """Standard FID Inception-V3 (torch-fidelity's weights through torchmetrics).

    Raises:
        MetricsError: when the weights are neither at ``weights`` nor downloadable.
    """
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except Exception as e:  # torch-fidelity missing
        raise MetricsError(
            f"Inception FID needs torch-fidelity ({e}); pip install torch-fidelity"
        ) from None
    try:
        net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=weights or None,
        )
    except Exception as e:
        raise MetricsError(
            f"Inception-V3 weights could not be loaded or downloaded ({type(e).__name__}); "
            "download pt_inception-2015-12-05-6726825d.pth on a machine with network and pass "
            "its path as eval.inception_weights"
        ) from None
    net = net.eval().to(device)

    def features(x: Tensor) -> Tensor:
        u8 = ((x.to(device) + 1) * 127.5).clamp(0, 255).to(torch.uint8)
        if u8.shape[1] == 1:
            u8 = u8.expand(-1, 3, -1, -1)
        return net(u8)

    return FeatureNet("inception-v3", features)


def reference_images(cfg, n: int) -> tuple[Tensor, str]:
    """Real images of the held-out split in [-1, 1], and a cache key part naming them."""
    from ganrf.data import load_mnist, make_synthetic, to_float

    if cfg.data.dataset == "mnist":
        images, _ = load_mnist(cfg.data.root, train=False, download=cfg.data.download)
        return to_float(images[:n]), f"mnist-test-{min(n, len(images))}"
    if cfg.data.dataset == "synthetic":
        images, _ = make_synthetic(n, cfg.data.image_size, cfg.data.channels, seed=cfg.seed + 7919)
        return to_float(images), ""  # cheap to make: not cached
    from ganrf.data import load_training_images

    # CelebA / ImageNet: the first n images of the training set stand as the reference
    data = load_training_images(cfg.data, torch.device("cpu"), seed=cfg.seed)
    if data.images is None:
        raise MetricsError(
            f"{cfg.data.dataset}: set data.subset so the reference set fits in memory"
        )
    return to_float(data.images[:n]), f"{cfg.data.dataset}-train-{min(n, data.num_images)}"


class Evaluator:
    """Scores a generator and a discriminator; reused across a trial's evaluations."""

    def __init__(
        self,
        cfg,
        device: torch.device,
        feature_net: FeatureNet | None = None,
        design: DiscriminatorDesign | None = None,
    ) -> None:
        self.cfg, self.device = cfg, device
        self.design = design or cfg.design()
        if feature_net is None:
            mnist_like = (cfg.data.image_size, cfg.data.channels) == (28, 1)
            feature_net = (
                mnist_feature_net(device)
                if mnist_like
                else inception_feature_net(device, cfg.eval.inception_weights)
            )
        self.net = feature_net
        self.n = cfg.eval.samples
        self.patch = max(2, round(cfg.data.image_size * PATCH_FRACTION))
        real, key = reference_images(cfg, self.n)
        self.real_images = real[: cfg.eval.erf_images]
        self.ref = self._reference(real, key)

    def _reference(self, real: Tensor, key: str) -> dict[str, Tensor]:
        """Reference features, computed once and cached on disk by dataset, split, evaluator."""
        path = cache_dir() / f"ref-{key}-{self.net.name}-p{self.patch}.pt" if key else None
        if path is not None and path.exists():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:
                log.warning("reference cache %s unreadable; recomputing", path)
        feats, _ = self.net(real)
        crops = scores.random_crops(real, self.patch, min(len(real), PRDC_MAX), seed=1)
        ref = {"features": feats, "patch_features": self.net(crops)[0]}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save(ref, tmp)
            tmp.replace(path)
        return ref

    def score_images(self, fake: Tensor) -> dict[str, Any]:
        """Every sample metric for generated images ``(N, C, H, W)`` in [-1, 1]."""
        feats, probs = self.net(fake)
        real = self.ref["features"]
        out: dict[str, Any] = {"metric/feature_net": self.net.name, "metric/samples": len(fake)}
        out["metric/fid"] = scores.frechet_distance(real, feats)
        out["metric/kid_mean"], out["metric/kid_std"] = scores.kid(real, feats)
        for k, v in scores.prdc(real[:PRDC_MAX], feats[:PRDC_MAX]).items():
            out[f"metric/{k}"] = v
        crops = scores.random_crops(fake, self.patch, min(len(fake), PRDC_MAX), seed=2)
        out["metric/patch_fid"] = scores.frechet_distance(
            self.ref["patch_features"], self.net(crops)[0]
        )
        out["metric/ssim"] = scores.mean_pairwise_ssim(fake)
        if probs is not None:
            out |= {f"metric/{k}": v for k, v in scores.class_scores(probs).items()}
            out["metric/success"] = int(
                out["metric/classifier_score"] >= SUCCESS_CLASSIFIER_SCORE
                and out["metric/class_count"] >= SUCCESS_CLASSES
            )
        return out

    def __call__(
        self, *, g: nn.Module, d: nn.Module, cfg, device, out_dir: Path | None, step: int
    ) -> dict[str, Any]:
        noise = torch.randn(
            self.n, cfg.g.noise_dim, generator=torch.Generator().manual_seed(20_000 + cfg.seed)
        ).to(device)
        out = self.score_images(sample(g, noise))
        erf = effective_rf(d, self.real_images.to(device), self.design)
        out |= erf_metrics(erf)
        unregistered = sorted(set(out) - set(METRICS) - set(INFO_KEYS))
        if unregistered:  # the page, the loader and Tune's table would not know them
            raise KeyError(f"metrics {unregistered} are not registered in ganrf.metrics.spec")
        if out_dir is not None:
            out["artifact/erf"] = save_erf(erf, Path(out_dir), step)
        return out


def erf_metrics(erf: ERF) -> dict[str, float]:
    return {
        "erf/radius50": erf.radius50,
        "erf/radius95": erf.radius95,
        "erf/size50": erf.size50,
        "erf/size95": erf.size95,
    }


def save_erf(erf: ERF, out_dir: Path, step: int) -> str:
    from torchvision.utils import save_image

    path = out_dir / "erf" / f"step{step:08d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    m = erf.map / erf.map.max().clamp_min(1e-30)
    save_image(m[None, None], path)
    return str(path.relative_to(out_dir))
