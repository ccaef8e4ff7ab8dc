"""Training data: MNIST, CelebA, ImageNet / any class-folder tree, crops of shipped photographs
and a synthetic set (the sources are in :mod:`ganrf.data.sources` and :mod:`ganrf.data.photo`).

Images are kept as ``uint8 (N, C, H, W)`` and scaled to [-1, 1] per batch. Small datasets (MNIST,
a CelebA subset) are held on the training device as one tensor; large ones stream through a
DataLoader with workers and pinned memory. Batch order is a function of (seed, epoch) alone, so
a run resumed from a checkpoint sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ganrf.config import DataConfig
from ganrf.data.photo import config_crops
from ganrf.data.sources import (
    DataError,
    celeba_dataset,
    image_folder_dataset,
    load_mnist,
    make_synthetic,
)

# The datasets cut from a trial's seed: each trial of a pack has its own.
SEEDED_DATASETS = ("synthetic", "photo")

# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The order of one epoch, a function of (seed, epoch) alone (so resume is exact)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class _ListSampler(Sampler[int]):
    def __init__(self, order: Tensor) -> None:
        self.order = order

    def __iter__(self):
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


@dataclass
class TrainingImages:
    """The training set, resident (``images`` on the device) or streaming (``dataset``)."""

    num_images: int
    images: Tensor | None = None  # uint8 (N, C, H, W) on the training device
    dataset: Dataset | None = None
    workers: int = 0

    @property
    def resident(self) -> bool:
        return self.images is not None

    def batches(
        self, *, seed: int, epoch: int, start: int, batch_size: int, device: torch.device
    ) -> Iterator[Tensor]:
        """Float batches in [-1, 1] of one epoch, from batch index ``start`` on (drop last)."""
        order = epoch_permutation(self.num_images, seed, epoch)
        usable = (self.num_images // batch_size) * batch_size
        order = order[start * batch_size : usable]
        if self.images is not None:
            order = order.to(self.images.device)
            for i in range(0, len(order), batch_size):
                yield to_float(self.images[order[i : i + batch_size]])
            return
        loader = DataLoader(
            self.dataset,  # type: ignore[arg-type]
            batch_size=batch_size,
            sampler=_ListSampler(order),
            num_workers=self.workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
        )
        for x, _ in loader:
            yield to_float(x.to(device, non_blocking=True))


def to_float(x: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def load_training_images(cfg: DataConfig, device: torch.device, seed: int = 0) -> TrainingImages:
    """The training set for ``cfg``, on ``device`` when it fits in ``cfg.device_max_gb``.

    Raises:
        DataError: one sentence naming what is missing or wrong and how to fix it.
    """
    if cfg.dataset == "synthetic":
        images, _ = make_synthetic(cfg.synthetic_size, cfg.image_size, cfg.channels, seed)
    elif cfg.dataset == "photo":
        images = config_crops(cfg, cfg.crops, seed)  # the trial's seed cuts its crops
    elif cfg.dataset == "mnist":
        _check_mnist_shape(cfg)
        images, _ = load_mnist(cfg.root, train=True, download=cfg.download)
    else:
        ds = _image_dataset(cfg)
        n = len(ds)  # type: ignore[arg-type]
        nbytes = n * cfg.channels * cfg.image_size**2
        if nbytes > cfg.device_max_gb * 2**30:
            return TrainingImages(n, dataset=ds, workers=cfg.workers)
        images = _materialise(ds, cfg.workers)
    if cfg.subset:
        images = images[: cfg.subset]
    expected = (cfg.channels, cfg.image_size, cfg.image_size)
    if tuple(images.shape[1:]) != expected:
        raise DataError(f"{cfg.dataset} images are {tuple(images.shape[1:])}, expected {expected}")
    return TrainingImages(len(images), images=images.to(device))


def check_data(cfg: DataConfig, *, test_split: bool = False) -> None:
    """Fail now, with the message training would give, when the data of ``cfg`` cannot be had.

    The same rules as :func:`load_training_images`, short of loading: MNIST is read (and
    downloaded when missing and ``cfg.download``), its test split too with ``test_split`` (the
    MNIST metrics use it); CelebA and class-folder trees have their image files found by name
    and only the first one decoded; the synthetic set needs nothing.

    Raises:
        DataError: one sentence naming what is missing or wrong and how to fix it.
    """
    if cfg.dataset == "synthetic":
        return
    if cfg.dataset == "photo":
        config_crops(cfg, 1, seed=0)  # every picture read, and checked big enough for a crop
        return
    if cfg.dataset == "mnist":
        _check_mnist_shape(cfg)
        load_mnist(cfg.root, train=True, download=cfg.download)
        if test_split:
            load_mnist(cfg.root, train=False, download=cfg.download)
        return
    _image_dataset(cfg)


def _check_mnist_shape(cfg: DataConfig) -> None:
    if (cfg.image_size, cfg.channels) != (28, 1):
        raise DataError(
            f"MNIST is 28x28 grey; data.image_size {cfg.image_size} and data.channels "
            f"{cfg.channels} must be 28 and 1"
        )


def _image_dataset(cfg: DataConfig) -> Dataset:
    """CelebA or a class-folder tree (``cfg.subset`` applied), its files found but not decoded
    but for the first, read now so that an unreadable set fails with the file's name."""
    ds = celeba_dataset(cfg) if cfg.dataset == "celeba" else image_folder_dataset(cfg)
    if cfg.subset:
        ds = torch.utils.data.Subset(ds, range(min(cfg.subset, len(ds))))  # type: ignore[arg-type]
    if len(ds) == 0:  # type: ignore[arg-type]
        raise DataError(f"{cfg.dataset}: no images under {cfg.root}")
    ds[0]
    return ds


def _materialise(ds: Dataset, workers: int) -> Tensor:
    loader = DataLoader(ds, batch_size=256, num_workers=workers)
    return torch.cat([x for x, _ in loader])


def steps_per_epoch(num_images: int, batch_size: int, d_steps: int) -> int:
    """Generator steps per pass over the data (each step takes ``d_steps`` real batches)."""
    n = num_images // (batch_size * d_steps)
    if n < 1:
        raise DataError(
            f"{num_images} training images make no full batch of {batch_size} x {d_steps} "
            f"discriminator steps; lower schedule.batch_size to at most "
            f"{max(1, num_images // d_steps)}"
        )
    return n


__all__ = [
    "SEEDED_DATASETS",
    "DataError",
    "TrainingImages",
    "check_data",
    "epoch_permutation",
    "load_mnist",
    "load_training_images",
    "make_synthetic",
    "steps_per_epoch",
    "to_float",
]
