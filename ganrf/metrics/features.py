"""What the evaluator measures with: the feature networks and the reference sets.

* :class:`FeatureNet`: a feature network for images in [-1, 1], its global features, optional
  class probabilities (a classifier: the shipped MNIST CNN) and, with a ``stem``, local features
  (every position of an intermediate conv map of the first ``LOCAL_IMAGES`` images);
  :func:`mnist_feature_net` for 28x28 digits, :func:`inception_feature_net` (Inception-V3, the
  standard FID weights) for RGB;
* :func:`reference_images`: the fixed random subset of real images the samples are scored
  against (seeded, ``REFERENCE_SEED``: MNIST's test split is ordered, its two halves are FID 5.2
  apart, so its first n images are no reference), and the disjoint real set whose distance to it
  is the FID floor.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

REFERENCE_SEED = 2016  # the permutation that picks the reference (test) and floor (train) sets
LOCAL_IMAGES = 500  # local_fid: every position of this many images' conv map (98,000 vectors)


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
    if cfg.data.dataset == "photo":  # crops the trials never train on: fixed seeds, not cached
        from ganrf.data.photo import config_crops

        ref, floor = (config_crops(cfg.data, n, s) for s in (REFERENCE_SEED, REFERENCE_SEED + 1))
        return to_float(ref), to_float(floor), ""
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
