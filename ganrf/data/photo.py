"""Real photographs that need no download: random crops of the pictures scikit-image ships in
its wheel (``skimage/data``), as SinGAN and InGAN train on one picture.

``data.dataset=photo`` trains on ``data.crops`` random ``image_size`` crops of the photographs
named in ``data.photo`` (comma-separated keys of :data:`PHOTOS`), each first resized so its
shorter side is ``data.photo_size`` px (the crop's share of the picture sets the scale of the
structure a crop holds), half of them flipped left to right when ``data.flip``. The crops are a
function of (photographs, sizes, count, seed) alone: every node and every resume cuts the same.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import torch
from torch import Tensor

from ganrf.config import DataConfig
from ganrf.data.sources import DataError

# Key -> file in scikit-image's wheel (skimage/data/): only the pictures it ships, so none is
# ever fetched (skimage.data's other pictures download through pooch).
PHOTOS = {
    "astronaut": "astronaut.png",  # Eileen Collins, 512x512 RGB
    "chelsea": "chelsea.png",  # a cat, 451x300 RGB
    "coffee": "coffee.png",  # a cup of coffee, 600x400 RGB
    "rocket": "rocket.jpg",  # a launch, 640x427 RGB
    "hubble": "hubble_deep_field.jpg",  # galaxies, 1000x872 RGB
    "ihc": "ihc.png",  # immunohistochemistry stain, 512x512 RGB
    "retina": "retina.jpg",  # a fundus photograph, 1411x1411 RGB
    "motorcycle": "motorcycle_left.png",  # 741x500 RGB
    "camera": "camera.png",  # the cameraman, 512x512 grey
    "coins": "coins.png",  # 384x303 grey
    "brick": "brick.png",  # a texture, 512x512 grey
    "grass": "grass.png",  # a texture, 512x512 grey
    "gravel": "gravel.png",  # a texture, 512x512 grey
}


def photo_keys(spec: str) -> list[str]:
    """The keys of ``spec`` ("astronaut" or "astronaut,coffee").

    Raises:
        DataError: a key that is not one of :data:`PHOTOS`, or none.
    """
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in keys if k not in PHOTOS]
    if unknown or not keys:
        what = f"{', '.join(unknown)} is not a photograph" if unknown else "names no photograph"
        raise DataError(
            f"data.photo {spec!r}: {what} scikit-image ships; choose from {', '.join(PHOTOS)}"
        )
    return keys


@cache
def load_photo(key: str, size: int, channels: int) -> Tensor:
    """The photograph ``key`` resized (Lanczos) so its shorter side is ``size`` px (0: as
    shipped), grey or RGB: uint8 ``(channels, H, W)``.

    Raises:
        DataError: ``key`` unknown, or its file missing from the installed scikit-image.
    """
    from PIL import Image

    photo_keys(key)
    path = resources.files("skimage.data") / PHOTOS[key]
    try:
        with resources.as_file(path) as p, Image.open(p) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if size:
                w, h = im.size
                scale = size / min(w, h)
                im = im.resize(
                    (max(size, round(w * scale)), max(size, round(h * scale))), Image.LANCZOS
                )
            a = np.array(im)  # a copy torch may own
    except (OSError, ModuleNotFoundError) as e:
        raise DataError(
            f"photograph {key!r} ({PHOTOS[key]}) cannot be read from scikit-image's data folder "
            f"({type(e).__name__}); reinstall scikit-image (pip install --force-reinstall "
            "scikit-image)"
        ) from None
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(a))


def photo_crops(
    spec: str,
    n: int,
    crop: int,
    *,
    photo_size: int,
    channels: int,
    seed: int,
    flip: bool = True,
) -> Tensor:
    """``n`` random ``crop`` x ``crop`` crops of the photographs of ``spec``, in turn, uint8
    ``(n, channels, crop, crop)``; half flipped left to right (a seeded coin) when ``flip``.

    Raises:
        DataError: an unknown photograph, or a crop larger than a resized photograph.
    """
    keys = photo_keys(spec)
    photos = [load_photo(k, photo_size, channels) for k in keys]
    for key, p in zip(keys, photos):
        if min(p.shape[1:]) < crop:
            raise DataError(
                f"photograph {key!r} is {p.shape[2]}x{p.shape[1]} px after data.photo_size "
                f"{photo_size}, smaller than the {crop} px crops (data.image_size); raise "
                "data.photo_size or lower data.image_size"
            )
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, channels, crop, crop, dtype=torch.uint8)
    for i in range(n):
        p = photos[i % len(photos)]
        y = int(torch.randint(0, p.shape[1] - crop + 1, (1,), generator=g))
        x = int(torch.randint(0, p.shape[2] - crop + 1, (1,), generator=g))
        c = p[:, y : y + crop, x : x + crop]
        out[i] = c.flip(-1) if flip and bool(torch.rand(1, generator=g) < 0.5) else c
    return out


def config_crops(cfg: DataConfig, n: int, seed: int) -> Tensor:
    """``n`` crops as ``cfg`` (a photo dataset's DataConfig) cuts them, from ``seed``."""
    return photo_crops(
        cfg.photo,
        n,
        cfg.image_size,
        photo_size=cfg.photo_size,
        channels=cfg.channels,
        seed=seed,
        flip=cfg.flip,
    )
