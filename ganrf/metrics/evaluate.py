"""The evaluator: every trial's scores, computed every evaluation period.

:class:`Evaluator` generates ``eval.samples`` images from fixed noise, computes their features
once with the dataset's feature network, and scores them against cached reference features of
a fixed random subset of the real test split (seeded, ``REFERENCE_SEED``: MNIST's test split is
ordered, its two halves are FID 5.2 apart, so its first n images are no reference):

* ``metric/fid``: Fréchet distance of the feature network's features (``metric/feature_net``
  names it: the shipped MNIST CNN for 28x28 digits, Inception-V3 for RGB), beside its floor
  ``metric/fid_floor``, the same distance for n *real* training images (what a perfect generator
  would score at this n; computed once per reference set and cached), and
  ``metric/fid_over_floor``;
* ``metric/kid_mean``, ``metric/kid_std``; ``metric/precision``, ``recall``, ``density``,
  ``coverage`` (k = 5, Naeem et al.'s definitions);
* ``metric/local_fid`` (feature networks with a ``stem``, the MNIST evaluator): Fréchet distance
  of the evaluator's own intermediate features, the 64-d vector at every position of its second
  conv map (each sees an 8x8-pixel neighbourhood: strokes, ends, junctions), over the first
  ``LOCAL_IMAGES`` images;
* ``metric/ssim``: mean pairwise SSIM of samples (high = alike, a collapse);
* with a classifier (MNIST): ``metric/classifier_score``, ``class_count``, ``class_kl``,
  ``confident_share`` and ``metric/success``;
* ``erf/conv_*``: the conv stack's ERF (its central unit; compare with ``rf/conv``), and
  ``erf/decision_*``: the gradient map of the decision (whole image for the dense head), each as
  radii and sizes ``2 r + 1`` holding 50% / 95% of the mass, with both maps saved as images.

**Success** ("did it generate digits?") is 1 when the samples are as close to the real digits as
``SUCCESS_FID_OVER_FLOOR`` times the real-vs-real floor, *and* their precision is at least
``SUCCESS_PRECISION`` (most samples lie on the real digits' manifold), *and* their coverage is at
least ``SUCCESS_COVERAGE`` (they cover most of it). The constants were fixed on the calibration
cases of ``scripts/metric_references.py`` (README, "Metrics") before any sweep: real digits and a
held-out real split pass; blurred digits, noise, one digit, mixtures of digit fragments, blobs and
independent pixels (what a 1x1 discriminator can enforce) fail, each with a margin.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganrf.design.designs import DiscriminatorDesign
from ganrf.metrics import scores
from ganrf.metrics.erf import ERF, conv_erf, decision_erf
from ganrf.metrics.judge import recognisable_metrics
from ganrf.metrics.spec import INFO_KEYS, METRICS
from ganrf.models import sample

log = logging.getLogger(__name__)

# Fixed on scripts/metric_references.py's cases (README, "Metrics"), n = 2,000 and 10,000: real
# digits score FID/floor 0.91-1.02, precision 0.93-0.94, coverage 0.95-0.97; every failure case
# FID/floor >= 32, coverage <= 0.13, and precision <= 0.47 where its coverage is not 0.
SUCCESS_FID_OVER_FLOOR = 5.0
SUCCESS_PRECISION = 0.7
SUCCESS_COVERAGE = 0.5
REFERENCE_SEED = 2016  # the permutation that picks the reference (test) and floor (train) sets
LOCAL_IMAGES = 500  # local_fid: every position of this many images' conv map (98,000 vectors)
PRDC_MAX = 5000  # k-NN scores on at most this many samples each side (O(N^2) distances)


class MetricsError(RuntimeError):
    """A feature network or reference set that cannot be had; the message says how to get it."""


def cache_dir() -> Path:
    return Path(os.environ.get("GANRF_CACHE", Path.home() / ".cache" / "ganrf"))


@dataclass
class Features:
    """What a feature network makes of a set of images (on the CPU)."""

    features: Tensor  # (N, D) the global features
    probs: Tensor | None  # (N, classes) for a classifier
    local: Tensor | None  # (M, D') local feature vectors, for a network with a stem


class FeatureNet:
    """A feature network for x in [-1, 1]: ``features``, optional class probabilities, a name.

    With a ``stem``, ``features`` reads the stem's output map ``(B, D', h, w)``, whose vectors
    at every position of the first ``LOCAL_IMAGES`` images are the local features.
    """

    def __init__(
        self,
        name: str,
        features: Callable[[Tensor], Tensor],
        probs_from_features: Callable[[Tensor], Tensor] | None = None,
        batch: int = 500,
        stem: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.name, self._features, self._probs, self.batch = (
            name,
            features,
            probs_from_features,
            batch,
        )
        self._stem = stem

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Features:
        feats, local, seen = [], [], 0
        for b in x.split(self.batch):
            if self._stem is not None:
                fmap = self._stem(b)
                if seen < LOCAL_IMAGES:
                    keep = fmap[: LOCAL_IMAGES - seen]
                    local.append(keep.permute(0, 2, 3, 1).flatten(0, 2).float())
                seen += len(b)
                b = fmap
            feats.append(self._features(b).float())
        g = torch.cat(feats)
        probs = self._probs(g).softmax(1) if self._probs is not None else None
        # Left on the device they were computed on: the scores run there too (on a GPU, the
        # whole evaluation stays on it).
        return Features(g, probs, torch.cat(local) if local else None)


def mnist_feature_net(device: torch.device) -> FeatureNet:
    from ganrf.metrics.mnist_cnn import STEM_LAYERS, evaluator_id, load_evaluator

    net = load_evaluator(str(device))
    stem, rest = net.body[:STEM_LAYERS], net.body[STEM_LAYERS:]
    return FeatureNet(evaluator_id(), rest, net.classify, stem=lambda x: stem(x.to(device)))


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


def _permuted(images: Tensor) -> Tensor:
    g = torch.Generator().manual_seed(REFERENCE_SEED)
    return images[torch.randperm(len(images), generator=g)]


def reference_images(cfg, n: int) -> tuple[Tensor, Tensor | None, str]:
    """The reference set, the floor set (real images disjoint from it, or None) and a cache key.

    MNIST: a fixed random subset of n test images (``REFERENCE_SEED``) and, for the floor, one of
    n training images: what a generator that reproduced its training data exactly would score.
    Images in [-1, 1].
    """
    from ganrf.data import load_mnist, make_synthetic, to_float

    if cfg.data.dataset == "mnist":
        test, _ = load_mnist(cfg.data.root, train=False, download=cfg.data.download)
        train, _ = load_mnist(cfg.data.root, train=True, download=cfg.data.download)
        ref, floor = _permuted(test)[:n], _permuted(train)[:n]
        return to_float(ref), to_float(floor), f"mnist-test-s{REFERENCE_SEED}-{len(ref)}"
    if cfg.data.dataset == "synthetic":  # cheap to make: not cached
        size, ch = cfg.data.image_size, cfg.data.channels
        ref, _ = make_synthetic(n, size, ch, seed=cfg.seed + 7919)
        floor, _ = make_synthetic(n, size, ch, seed=cfg.seed + 7920)
        return to_float(ref), to_float(floor), ""
    from ganrf.data import load_training_images

    # CelebA / ImageNet: a random subset of the training set stands as the reference
    data = load_training_images(cfg.data, torch.device("cpu"), seed=cfg.seed)
    if data.images is None:
        raise MetricsError(
            f"{cfg.data.dataset}: set data.subset so the reference set fits in memory"
        )
    images = _permuted(data.images)
    floor = to_float(images[n : 2 * n]) if len(images) >= 2 * n else None
    key = f"{cfg.data.dataset}-train-s{REFERENCE_SEED}-{min(n, data.num_images)}"
    return to_float(images[:n]), floor, key


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
        real, floor, key = reference_images(cfg, self.n)
        self.real_images = real[: cfg.eval.erf_images]
        self.ref = {k: v.to(device) for k, v in self._reference(real, floor, key).items()}
        self.fid_floor = float(self.ref["fid_floor"])

    def _reference(self, real: Tensor, floor: Tensor | None, key: str) -> dict[str, Tensor]:
        """Reference features and the FID floor, computed once and cached on disk by dataset,
        split, subset and evaluator."""
        path = cache_dir() / f"ref-{key}-{self.net.name}-v2.pt" if key else None
        if path is not None and path.exists():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:
                log.warning("reference cache %s unreadable; recomputing", path)
        f = self.net(real)
        ref = {"features": f.features}
        if f.local is not None:
            ref["local"] = f.local
        fid_floor = math.nan
        if floor is not None:
            fid_floor = scores.frechet_distance(f.features, self.net(floor).features)
        ref["fid_floor"] = torch.tensor(fid_floor, dtype=torch.float64)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save({k: v.cpu() for k, v in ref.items()}, tmp)
            tmp.replace(path)
        return ref

    def score_images(self, fake: Tensor) -> dict[str, Any]:
        """Every sample metric for generated images ``(N, C, H, W)`` in [-1, 1]."""
        f = self.net(fake)
        real = self.ref["features"]
        out: dict[str, Any] = {"metric/feature_net": self.net.name, "metric/samples": len(fake)}
        out["metric/fid"] = scores.frechet_distance(real, f.features)
        out["metric/fid_floor"] = self.fid_floor
        out["metric/fid_over_floor"] = out["metric/fid"] / self.fid_floor
        out["metric/kid_mean"], out["metric/kid_std"] = scores.kid(real, f.features)
        for k, v in scores.prdc(real[:PRDC_MAX], f.features[:PRDC_MAX]).items():
            out[f"metric/{k}"] = v
        if f.local is not None and "local" in self.ref:
            out["metric/local_fid"] = scores.frechet_distance(self.ref["local"], f.local)
        out["metric/ssim"] = scores.mean_pairwise_ssim(fake)
        if f.probs is not None:
            out |= {f"metric/{k}": v for k, v in scores.class_scores(f.probs).items()}
            out["metric/success"] = success(out)
        if tuple(fake.shape[1:]) == (1, 28, 28):  # the digits' second level (issue 20)
            out |= recognisable_metrics(fake)
        return out

    def __call__(
        self, *, g: nn.Module, d: nn.Module, cfg, device, out_dir: Path | None, step: int
    ) -> dict[str, Any]:
        noise = torch.randn(
            self.n, cfg.g.noise_dim, generator=torch.Generator().manual_seed(20_000 + cfg.seed)
        ).to(device)
        out = self.score_images(sample(g, noise))
        real = self.real_images.to(device)
        erfs = {
            "conv": conv_erf(d, real, self.design),
            "decision": decision_erf(d, real, self.design),
        }
        out |= erf_metrics(erfs)
        unregistered = sorted(set(out) - set(METRICS) - set(INFO_KEYS))
        if unregistered:  # the page, the loader and Tune's table would not know them
            raise KeyError(f"metrics {unregistered} are not registered in ganrf.metrics.spec")
        if out_dir is not None:
            for kind, erf in erfs.items():
                out[f"artifact/erf_{kind}"] = save_erf(erf, Path(out_dir), step, kind)
        return out


def success(m: dict[str, Any]) -> int:
    """The yes/no verdict from a report's FID-over-floor, precision and coverage (module doc)."""
    return int(
        m["metric/fid_over_floor"] <= SUCCESS_FID_OVER_FLOOR
        and m["metric/precision"] >= SUCCESS_PRECISION
        and m["metric/coverage"] >= SUCCESS_COVERAGE
    )


def erf_metrics(erfs: dict[str, ERF]) -> dict[str, float]:
    """``erf/{kind}_radius50`` ... ``erf/{kind}_size95`` for each ERF kind (conv, decision)."""
    out = {}
    for kind, erf in erfs.items():
        for name in ("radius50", "radius95", "size50", "size95"):
            out[f"erf/{kind}_{name}"] = getattr(erf, name)
    return out


def save_erf(erf: ERF, out_dir: Path, step: int, kind: str) -> str:
    """The ERF map as ``erf/{kind}-stepNNNNNNNN.png`` (scaled to its maximum); its relative path."""
    from torchvision.utils import save_image

    path = out_dir / "erf" / f"{kind}-step{step:08d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    m = erf.map / erf.map.max().clamp_min(1e-30)
    save_image(m[None, None], path)
    return str(path.relative_to(out_dir))
