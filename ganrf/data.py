"""Training data: MNIST, CelebA, ImageNet / any class-folder tree, and a synthetic set.

Images are kept as ``uint8 (N, C, H, W)`` and scaled to [-1, 1] per batch. Small datasets (MNIST,
a CelebA subset) are held on the training device as one tensor; large ones stream through a
DataLoader with workers and pinned memory. Batch order is a function of (seed, epoch) alone, so
a run resumed from a checkpoint sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ganrf.config import DataConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DataError(RuntimeError):
    """Data that cannot be had or read; the message says what was expected and how to get it."""


# --------------------------------------------------------------------------------------------
# Synthetic, for tests and smoke runs: ten classes of digit-like strokes
# --------------------------------------------------------------------------------------------


def make_synthetic(
    n: int, image_size: int = 28, channels: int = 1, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``n`` images of 10 stroke classes (ring, bar, cross, ...), jittered; uint8 and labels.

    Made in memory from ``seed`` alone, so every test and node builds the same set.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    s = image_size
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    yy, xx = yy.float()[None], xx.float()[None]  # (1, S, S)
    cy = s / 2 + (torch.rand(n, 1, 1, generator=g) - 0.5) * s * 0.15
    cx = s / 2 + (torch.rand(n, 1, 1, generator=g) - 0.5) * s * 0.15
    scale = s * (0.22 + 0.08 * torch.rand(n, 1, 1, generator=g))
    dy, dx = (yy - cy) / scale, (xx - cx) / scale
    r = (dy**2 + dx**2).sqrt()
    w = 0.18  # stroke half-width, in units of scale
    shapes = torch.stack(
        [
            (r - 1).abs() < w,  # 0 ring
            (dx.abs() < w) & (dy.abs() < 1.2),  # 1 vertical bar
            ((dy - 0.5 * dx).abs() < w) & (dx.abs() < 1),  # 2 diagonal
            ((r - 1).abs() < w) & (dx > 0),  # 3 right half ring
            ((dx.abs() < w) | (dy.abs() < w)) & (r < 1.1),  # 4 cross
            (dy.abs() < w) & (dx.abs() < 1.1),  # 5 horizontal bar
            ((r - 0.6).abs() < w) | ((dx.abs() < w) & (dy < 0) & (dy > -1.2)),  # 6
            ((dy + 1).abs() < w) & (dx.abs() < 1) | ((dx - 0.9 * dy).abs() < w) & (dy.abs() < 1),
            ((r - 0.5).abs() < w) | (((dy.abs() - 0.5) ** 2 + dx**2).sqrt() - 0.5).abs().lt(w),
            ((r - 0.6).abs() < w) | ((dx.abs() < w) & (dy > 0) & (dy < 1.2)),  # 9
        ],
        dim=1,
    )  # (n, 10, S, S)
    mask = shapes[torch.arange(n), labels].float()
    noise = torch.rand(n, s, s, generator=g) * 0.1
    img = (mask * (0.85 + 0.15 * torch.rand(n, 1, 1, generator=g)) + noise).clamp(0, 1) * 255
    img = img.round().to(torch.uint8)[:, None].expand(n, channels, s, s).contiguous()
    return img, labels


# --------------------------------------------------------------------------------------------
# Real datasets
# --------------------------------------------------------------------------------------------


MNIST_FILES = tuple(
    f"{prefix}-{kind}-ubyte"
    for prefix in ("train", "t10k")
    for kind in ("images-idx3", "labels-idx1")
)


def load_mnist(root: str, train: bool = True, download: bool = True) -> tuple[Tensor, Tensor]:
    """MNIST through torchvision: uint8 ``(N, 1, 28, 28)`` and labels.

    Raises:
        DataError: files missing and not downloadable, truncated or corrupt, or of another shape.
    """
    import torchvision

    raw = Path(root) / "MNIST" / "raw"
    split = "training" if train else "test"
    missing = [name for name in MNIST_FILES if not (raw / name).exists()]  # torchvision needs all
    try:
        if missing:
            raise FileNotFoundError(raw)
        ds = torchvision.datasets.MNIST(root, train=train, download=False)
    except FileNotFoundError:
        if not download:
            raise DataError(
                f"MNIST files {', '.join(missing)} are not in {raw} and download is off; run "
                "once with download on a machine with network, or copy the four *-ubyte files "
                "there"
            ) from None
        ds = _download_mnist(root, train)
    except Exception as e:  # torchvision asserts on truncated idx files
        raise DataError(
            f"MNIST {split} files in {raw} are truncated or corrupt ({type(e).__name__}: {e}); "
            "delete them and download again"
        ) from None
    images, labels = ds.data, ds.targets
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28) or len(images) != len(labels):
        raise DataError(
            f"MNIST {split} images in {raw} have shape {tuple(images.shape)}, expected "
            "(N, 28, 28) with one label each; replace them with the original files"
        )
    return images[:, None].contiguous(), labels


def _download_mnist(root: str, train: bool):
    """Download MNIST into a temporary folder and move the four files into ``root/MNIST/raw``
    only once all are there: a failed download creates nothing under ``root`` or its parents.
    Each file is copied beside its final name and renamed, so no reader sees half a file."""
    import os
    import shutil
    import tempfile

    import torchvision

    raw = Path(root) / "MNIST" / "raw"
    stage = Path(tempfile.mkdtemp(prefix="ganrf-mnist-"))
    try:
        try:
            torchvision.datasets.MNIST(stage, train=train, download=True)
        except Exception as e:  # URLError, HTTPError, RuntimeError("Error downloading ...")
            raise DataError(
                f"MNIST is not in {raw} and could not be downloaded ({type(e).__name__}), so "
                f"nothing was written there; on a machine without network, copy the four "
                f"*-ubyte files into {raw}"
            ) from None
        try:
            raw.mkdir(parents=True, exist_ok=True)
            for name in MNIST_FILES:
                part = raw / f".{name}.{os.getpid()}.part"
                shutil.copyfile(stage / "MNIST" / "raw" / name, part)
                os.replace(part, raw / name)
        except OSError as e:
            raise DataError(
                f"MNIST was downloaded but cannot be written to {raw} ({e.strerror}); "
                "choose a writable data root"
            ) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return torchvision.datasets.MNIST(root, train=train, download=False)


class ImageFiles(Dataset):
    """A flat folder of images (e.g. aligned CelebA faces), resized and centre-cropped."""

    def __init__(self, files: list[Path], image_size: int, channels: int) -> None:
        self.files, self.transform = files, _transform(image_size)
        self.mode = "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return _read_image(self.files[i], self.mode, self.transform), 0


class _Converted(Dataset):
    """A torchvision dataset whose PIL images are converted, resized and made uint8."""

    def __init__(self, base: Dataset, image_size: int, channels: int, name: str) -> None:
        self.base, self.name = base, name
        self.transform = _transform(image_size)
        self.mode = "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        try:
            img, label = self.base[i]
        except Exception as e:
            samples = getattr(self.base, "samples", None)  # ImageFolder's (path, class) pairs
            what = samples[i][0] if samples else f"{self.name} image {i}"
            raise DataError(
                f"cannot read image {what} ({type(e).__name__}); delete or re-copy it"
            ) from None
        return self.transform(img.convert(self.mode)), int(label) if isinstance(label, int) else 0


def _transform(image_size: int):
    from torchvision import transforms as T

    return T.Compose([T.Resize(image_size), T.CenterCrop(image_size), T.PILToTensor()])


def _read_image(path: Path, mode: str, transform) -> Tensor:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return transform(im.convert(mode))
    except Exception as e:
        raise DataError(
            f"cannot read image {path} ({type(e).__name__}); delete or re-copy it"
        ) from None


def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _celeba(cfg: DataConfig) -> Dataset:
    import torchvision

    root = Path(cfg.root)
    aligned = root / "celeba" / "img_align_celeba"
    if aligned.is_dir() and (root / "celeba" / "list_eval_partition.txt").exists():
        try:
            base = torchvision.datasets.CelebA(
                cfg.root, split="train", target_type=[], download=False
            )
        except Exception as e:
            raise DataError(f"CelebA in {root / 'celeba'} is incomplete or corrupt ({e})") from None
        return _Converted(base, cfg.image_size, cfg.channels, "CelebA")
    folder = aligned if aligned.is_dir() else root
    files = _image_files(folder) if folder.is_dir() else []
    if files:
        return ImageFiles(files, cfg.image_size, cfg.channels)
    if cfg.download:
        made = _missing_dirs(root / "celeba")
        try:
            base = torchvision.datasets.CelebA(
                cfg.root, split="train", target_type=[], download=True
            )
            return _Converted(base, cfg.image_size, cfg.channels, "CelebA")
        except Exception as e:
            for d in made:  # deepest first: leave none of the folders the attempt made, if empty
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
            raise DataError(
                f"CelebA is not in {root} and could not be downloaded ({type(e).__name__}); "
                f"put the aligned face images (img_align_celeba/*.jpg) under {root}"
            ) from None
    raise DataError(
        f"no CelebA images under {root}; put the aligned faces (img_align_celeba/*.jpg) there"
    )


def _image_folder(cfg: DataConfig) -> Dataset:
    import torchvision

    root = Path(cfg.root)
    if cfg.dataset == "imagenet" and (root / "train").is_dir():
        root = root / "train"
    reason = "it does not exist" if not root.exists() else "it is not a folder"
    try:
        if root.is_dir():  # finds the image files by name; none is decoded here
            return _Converted(
                torchvision.datasets.ImageFolder(str(root)),
                cfg.image_size,
                cfg.channels,
                cfg.dataset,
            )
    except FileNotFoundError as e:  # torchvision's two ways of finding nothing
        reason = (
            "it has no class folders"
            if "class folder" in str(e)
            else f"its class folders hold no images ({', '.join(IMAGE_SUFFIXES)})"
        )
    except OSError as e:
        reason = e.strerror or type(e).__name__
    raise DataError(
        f"{cfg.dataset}: {root} is not a class-folder tree of images ({reason}); expected "
        f"{root}/<class>/<image>.jpg (for ImageNet, the unpacked ILSVRC train folder)"
    )


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    return missing


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
    ds = _celeba(cfg) if cfg.dataset == "celeba" else _image_folder(cfg)
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
