"""Where training images come from: MNIST (torchvision), CelebA, any class-folder tree
(ImageNet), and a synthetic set of digit-like strokes for tests and smoke runs.

Every source answers a missing or malformed dataset with one :class:`DataError` sentence, and a
failed download leaves nothing behind. :mod:`ganrf.data.images` batches what these return.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganrf.config import DataConfig
from ganrf.storage import atomic_path

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
    _unpack_mnist(raw)
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
    except Exception:  # torchvision's bare asserts, reshape and int() errors say nothing useful
        raise DataError(
            f"MNIST {split} files in {raw} are truncated or corrupt (torchvision cannot parse "
            "them); delete them and download again"
        ) from None
    images, labels = ds.data, ds.targets
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28) or len(images) != len(labels):
        raise DataError(
            f"MNIST {split} images in {raw} have shape {tuple(images.shape)}, expected "
            "(N, 28, 28) with one label each; replace them with the original files"
        )
    return images[:, None].contiguous(), labels


def _unpack_mnist(raw: Path) -> None:
    """Unpack each ``*-ubyte.gz`` in ``raw`` whose ``*-ubyte`` is missing (MNIST as its site and
    mirrors ship it), as torchvision does after a download; each lands whole or not at all."""
    import gzip
    import shutil

    for name in MNIST_FILES:
        packed, target = raw / f"{name}.gz", raw / name
        if target.exists() or not packed.is_file():
            continue
        try:
            with atomic_path(target) as part, gzip.open(packed) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError) as e:
            raise DataError(
                f"cannot unpack {packed} ({_why(e, 'truncated')}); delete it and copy it again"
            ) from None


def _download_mnist(root: str, train: bool):
    """Download MNIST into a temporary folder and move the four files into ``root/MNIST/raw``
    only once all are there: a failed download creates nothing under ``root`` or its parents.
    Each file is copied beside its final name and renamed, so no reader sees half a file."""
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
                f"MNIST is not in {raw} and could not be downloaded ({_why(e, 'no network?')}), so "
                f"nothing was written there; on a machine without network, copy the four "
                f"*-ubyte files into {raw}"
            ) from None
        try:
            raw.mkdir(parents=True, exist_ok=True)
            for name in MNIST_FILES:
                with atomic_path(raw / name) as part:
                    shutil.copyfile(stage / "MNIST" / "raw" / name, part)
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
                f"cannot read image {what} ({_why(e, 'not an image file PIL can read')}); delete or re-copy it"
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
            f"cannot read image {path} ({_why(e, 'not an image file PIL can read')}); delete or re-copy it"
        ) from None


def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def celeba_dataset(cfg: DataConfig) -> Dataset:
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
                f"CelebA is not in {root} and could not be downloaded ({_why(e, 'no network?')}); "
                f"put the aligned face images (img_align_celeba/*.jpg) under {root}"
            ) from None
    raise DataError(
        f"no CelebA images under {root}; put the aligned faces (img_align_celeba/*.jpg) there"
    )


def image_folder_dataset(cfg: DataConfig) -> Dataset:
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


def _why(e: BaseException, fallback: str) -> str:
    """Why a read or download failed, in words: a download's network error (torchvision puts
    each mirror's in one RuntimeError), an OS error's text, the exception's first line, or
    ``fallback`` when it says nothing (torchvision's bare asserts on a truncated file)."""
    import re

    text = str(e)
    network = re.findall(r"urlopen error (?:\[Errno [^\]]*\] )?([^>]*)>", text)
    if network:
        return f"no network: {network[-1]}"
    if type(e).__name__ == "UnidentifiedImageError":  # PIL's: "cannot identify image file <...>"
        return "not an image file PIL can read"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else fallback


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    return missing
