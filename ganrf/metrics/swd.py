"""Multi-scale sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018,
"Progressive growing of GANs", section 5 and appendix D): a quality score on pixels alone, so it
needs no downloaded network and works for any grey or RGB set of at least 16 px.

Per level of each set's Laplacian pyramid (the image, then each band down to 16 px; the
coarsest level is the low-pass residual), ``PATCHES_PER_IMAGE`` 7x7 patches are cut at random
positions; each set's patches are normalised per colour channel (mean 0, std 1 over its patches
and pixels), flattened, and the two sets' distributions compared by the sliced Wasserstein
distance: the mean absolute difference of the sorted projections on ``DIRECTIONS`` random unit
directions (in ``REPEATS`` draws), times 10^3 as the paper reports it. A level ``k`` patch spans
``7 * 2**k`` pixels of the image, so the per-level distances say at which scale of structure
the two sets differ: the rf question's own axis.

As the reference implementation (progressive_growing_of_gans, metrics/sliced_wasserstein.py):
patch size 7, 128 patches per image, 512 directions (4 x 128), levels while a level is at least
16 px, the 5-tap binomial filter with mirrored borders (``cv2.pyrDown`` / ``pyrUp``). Two
choices are this project's: both sets are cut at the *same* random positions and projected on
the same directions, drawn from ``seed`` (so identical sets score exactly 0 and two evaluations
of a trial are comparable), and a set larger than the other is cut to the other's size (the
distance compares equally many sorted projections).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganrf.metrics.spec import SWD_MAX_IMAGES, SWD_PATCH

PATCH = SWD_PATCH  # the descriptor's neighbourhood, pixels a side
PATCHES_PER_IMAGE = 128
REPEATS, DIRECTIONS = 4, 128  # 512 random directions, drawn in 4 batches as the reference does
MIN_LEVEL = 16  # the pyramid stops above 16 px (the reference: levels while res >= 16)
MAX_LEVELS = 5  # levels reported (l0 .. l4): 256 px images and below have them all
MAX_IMAGES = SWD_MAX_IMAGES  # images of each set the distance reads (spec.py says why)
SCALE = 1e3  # the paper's SWD x 10^3
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # outer product: /256, cv2's filter


class SWDError(ValueError):
    """Sets the distance cannot compare; the message is one sentence saying why."""


def levels_for(size: int) -> int:
    """How many pyramid levels an image of ``size`` px (its shorter side) has: the image, then
    each halving while the level is at least ``MIN_LEVEL`` px (64 px: 64, 32, 16)."""
    n = 0
    while size >= MIN_LEVEL and n < MAX_LEVELS:
        n, size = n + 1, size // 2
    return n


def _filter(x: Tensor, gain: float) -> Tensor:
    c = x.shape[1]
    k = (torch.outer(_BINOMIAL, _BINOMIAL) * gain).to(x)[None, None].expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=c)


def pyr_down(x: Tensor) -> Tensor:
    """Blur with the 5-tap binomial filter (mirrored borders), keep every second pixel."""
    return _filter(x, 1.0)[:, :, ::2, ::2]


def pyr_up(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Zeros between the pixels, blur with 4x the filter, cut to ``size`` (h, w)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _filter(up, 4.0)[:, :, : size[0], : size[1]]


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``levels`` bands of ``x`` ``(N, C, H, W)``, finest first; the last is the low-pass rest."""
    pyramid = [x.float()]
    for _ in range(1, levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1], pyramid[-2].shape[-2:])
    return pyramid


@dataclass(frozen=True)
class Draws:
    """The random draws of one comparison: the patches' image index ``(P,)`` (the same at every
    level), per level their top-left corners ``(P,)``, and the unit directions
    ``(REPEATS, C * PATCH**2, DIRECTIONS)``."""

    images: Tensor
    ys: list[Tensor]
    xs: list[Tensor]
    directions: Tensor


def draw(n: int, channels: int, sizes: list[tuple[int, int]], seed: int) -> Draws:
    """Patch positions for ``n`` images per level of ``sizes`` (h, w), and the directions."""
    g = torch.Generator().manual_seed(seed)
    p = n * PATCHES_PER_IMAGE
    images = torch.arange(n).repeat_interleave(PATCHES_PER_IMAGE)
    ys = [torch.randint(0, h - PATCH + 1, (p,), generator=g) for h, _ in sizes]
    xs = [torch.randint(0, w - PATCH + 1, (p,), generator=g) for _, w in sizes]
    dirs = torch.randn(REPEATS, channels * PATCH**2, DIRECTIONS, generator=g)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    return Draws(images, ys, xs, dirs)


def descriptors(level: Tensor, images: Tensor, ys: Tensor, xs: Tensor) -> Tensor:
    """The 7x7 patches of ``level`` at the given corners, each set normalised per channel (mean
    0, std 1 over all its patches' pixels), flattened channel, row, column: ``(P, C * 49)``."""
    d = torch.arange(PATCH)
    rows = (ys[:, None] + d)[:, None, :, None]  # (P, 1, 7, 1)
    cols = (xs[:, None] + d)[:, None, None, :]  # (P, 1, 1, 7)
    chans = torch.arange(level.shape[1])[None, :, None, None]  # (1, C, 1, 1)
    patches = level[images[:, None, None, None], chans, rows, cols]  # (P, C, 7, 7)
    mean = patches.mean(dim=(0, 2, 3), keepdim=True)
    std = patches.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    # A constant channel (a blank set) has std 0: its descriptors are all 0, not NaN.
    return ((patches - mean) / std.clamp_min(1e-12)).flatten(1)


def sliced_wasserstein(a: Tensor, b: Tensor, directions: Tensor) -> float:
    """Mean over directions and points of |sorted(a @ dir) - sorted(b @ dir)|: the sliced
    Wasserstein-1 distance of two equally large point sets ``(P, D)``.

    The projections are sorted by NumPy (its SIMD sort is several times torch's on a CPU)."""
    dists = []
    for dirs in directions.to(a):
        pa, pb = (np.sort((dirs.T @ x.T).numpy(), axis=1) for x in (a, b))  # (DIRECTIONS, P)
        dists.append(float(np.abs(pa - pb).mean(dtype=np.float64)))
    return float(np.mean(dists))


@torch.no_grad()
def swd(real: Tensor, fake: Tensor, seed: int = 0) -> dict[str, float]:
    """The per-level distances ``l0`` (full size) ... and their mean ``mean``, times 10^3.

    ``real`` and ``fake``: ``(N, C, H, W)`` in [-1, 1] (or any range: each set is normalised
    per channel), the same C, H and W, at least 16 px. The larger set is cut to the smaller's
    size and both to ``MAX_IMAGES``; the first images are kept.

    Raises:
        SWDError: the sets differ in channels or size, are below 16 px, or one is empty.
    """
    if real.dim() != 4 or fake.dim() != 4 or real.shape[1:] != fake.shape[1:]:
        raise SWDError(
            f"SWD compares sets of one image shape; got {tuple(real.shape[1:])} and "
            f"{tuple(fake.shape[1:])} (channels, height, width)"
        )
    h, w = real.shape[-2:]
    if min(h, w) < MIN_LEVEL:
        raise SWDError(f"SWD needs images of at least {MIN_LEVEL} px a side, got {h}x{w}")
    n = min(len(real), len(fake), MAX_IMAGES)
    if n == 0:
        raise SWDError("SWD needs at least one image in each set")
    levels = levels_for(min(h, w))
    # The reference feeds uint8 0-255; the per-set normalisation makes the range immaterial,
    # but the same scale keeps the pyramid's rounding the reference's.
    pyr_real = laplacian_pyramid((real[:n].float().cpu() + 1) * 127.5, levels)
    pyr_fake = laplacian_pyramid((fake[:n].float().cpu() + 1) * 127.5, levels)
    draws = draw(n, real.shape[1], [tuple(p.shape[-2:]) for p in pyr_real], seed)
    out = {}
    for k, (lr, lf) in enumerate(zip(pyr_real, pyr_fake)):
        where = (draws.images, draws.ys[k], draws.xs[k])
        a, b = descriptors(lr, *where), descriptors(lf, *where)
        out[f"l{k}"] = SCALE * sliced_wasserstein(a, b, draws.directions)
    out["mean"] = sum(out.values()) / levels
    return out
