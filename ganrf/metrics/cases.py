"""The calibration cases of ``metric/recognisable`` (issue 20), exactly as listed there.

Recognisable (1): training digits; held-out test digits; elastic distortions (Simard et al.
2003: alpha 34, sigma 4); stroke width changed (grey dilation with a 2x2 element on half, erosion
on the other half, digits that lose all ink redrawn); Gaussian blur sigma 1.5; additive Gaussian
noise std 0.3 on the [-1, 1] scale, clipped; random affine (rotation +-15 deg, translation +-2 px,
scale 0.85-1.15).

No number (0): uniform noise; independent pixels (each from its pixel's real marginal); blobs;
quadrants of four different digits; one digit repeated; a fixed random permutation of the 784
pixel positions applied to real digits; 7x7 tile mosaics (each of the sixteen tiles from a
different random digit at the same position).

Every function takes real digits as a float array ``(n, 28, 28)`` in [0, 1] (white ink on black)
and returns one of the same shape and range. The cases only pick the set-level share cut
(``scripts/calibrate_recognisable.py``); no case trains anything.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

# The training digits the cases are made from: perm[:CASE_DIGITS] of the training split under
# ganrf.metrics.judge.SPLIT_SEED, disjoint from the judges' training and threshold digits.
CASE_DIGITS = 20_000
SIDE = 28


def elastic(x: np.ndarray, rng: np.random.Generator, alpha=34.0, sigma=4.0) -> np.ndarray:
    """Simard et al. (2003): a uniform(-1, 1) displacement field per axis, Gaussian-smoothed
    (sigma px), scaled by alpha px, bilinear resampling."""
    yy, xx = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    out = np.empty_like(x)
    for i, img in enumerate(x):
        dy, dx = (
            ndimage.gaussian_filter(rng.uniform(-1, 1, (SIDE, SIDE)), sigma) * alpha
            for _ in range(2)
        )
        out[i] = ndimage.map_coordinates(img, [yy + dy, xx + dx], order=1, mode="constant")
    return out.clip(0, 1)


def stroke_width(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey dilation (2x2) on half of the digits, grey erosion (2x2) on the other half,
    alternating (so that any first n of a case are half and half); an eroded digit left with no
    ink is redrawn: replaced by another random digit of ``x``, eroded."""
    out = np.empty_like(x)
    for i, img in enumerate(x):
        if i % 2 == 0:
            out[i] = ndimage.grey_dilation(img, size=(2, 2))
            continue
        eroded = ndimage.grey_erosion(img, size=(2, 2))
        while eroded.max() <= 0:
            eroded = ndimage.grey_erosion(x[rng.integers(len(x))], size=(2, 2))
        out[i] = eroded
    return out


def blur(x: np.ndarray, rng: np.random.Generator, sigma=1.5) -> np.ndarray:
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma))


def gaussian_noise(x: np.ndarray, rng: np.random.Generator, std=0.3) -> np.ndarray:
    """std on the [-1, 1] scale (std / 2 in [0, 1]), clipped."""
    return (x + rng.normal(0, std / 2, x.shape)).clip(0, 1).astype(x.dtype)


def random_affine(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation U(-15, 15) deg, translation U(-2, 2) px per axis, scale U(0.85, 1.15), about the
    image centre, bilinear."""
    out = np.empty_like(x)
    c = (SIDE - 1) / 2
    for i, img in enumerate(x):
        a = np.deg2rad(rng.uniform(-15, 15))
        s = rng.uniform(0.85, 1.15)
        t = rng.uniform(-2, 2, 2)
        fwd = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        inv = np.linalg.inv(fwd)  # affine_transform maps output coordinates to input ones
        offset = np.array([c, c]) - inv @ (np.array([c, c]) + t)
        out[i] = ndimage.affine_transform(img, inv, offset=offset, order=1, mode="constant")
    return out.clip(0, 1)


def uniform_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 1, x.shape).astype(x.dtype)


def independent_pixels(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every pixel drawn independently from that pixel's values over ``x``: all a 1x1
    discriminator can enforce."""
    flat = x.reshape(len(x), -1)
    pick = rng.integers(0, len(x), flat.shape)
    return np.take_along_axis(flat, pick, 0).reshape(x.shape)


def blobs(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smoothed random fields inside a digit-sized window, thresholded to the real ink share."""
    ink = float((x > 0).mean())
    field = ndimage.gaussian_filter(rng.normal(size=x.shape), sigma=(0, 2, 2))
    yy, xx = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    field *= np.exp(-(((yy - 13.5) / 7) ** 2 + ((xx - 13.5) / 5) ** 2) / 2)
    cut = np.quantile(field.reshape(len(x), -1), 1 - ink, axis=1)[:, None, None]
    return ndimage.gaussian_filter((field > cut).astype(x.dtype), sigma=(0, 0.7, 0.7))


def _tiled(x: np.ndarray, rng: np.random.Generator, tile: int) -> np.ndarray:
    """Each tile x tile block taken from a different random digit at the same position."""
    out = np.empty_like(x)
    n = len(x)
    for y0 in range(0, SIDE, tile):
        for x0 in range(0, SIDE, tile):
            pick = rng.integers(0, n, n)
            out[:, y0 : y0 + tile, x0 : x0 + tile] = x[pick, y0 : y0 + tile, x0 : x0 + tile]
    return out


def quadrants(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _tiled(x, rng, SIDE // 2)


def tile_mosaic(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _tiled(x, rng, 7)


def one_digit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The first digit of ``x``, n times, with a little noise (std 0.05 in [0, 1])."""
    rep = np.repeat(x[:1], len(x), 0)
    return (rep + rng.normal(0, 0.05, rep.shape)).clip(0, 1).astype(x.dtype)


def pixel_permutation(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One fixed permutation of the 784 positions (seed 0, whatever ``rng``) for every digit."""
    perm = np.random.default_rng(0).permutation(SIDE * SIDE)
    return x.reshape(len(x), -1)[:, perm].reshape(x.shape)


Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]

# name -> (expected level, transform of training digits); "held-out test digits" is the one case
# made from another split (see make_cases).
RECOGNISABLE: dict[str, Transform | None] = {
    "training digits": None,
    "held-out test digits": None,
    "elastic (α 34, σ 4)": elastic,
    "stroke width (dilate / erode 2×2)": stroke_width,
    "Gaussian blur (σ 1.5)": blur,
    "Gaussian noise (std 0.3)": gaussian_noise,
    "random affine": random_affine,
}
NO_NUMBER: dict[str, Transform] = {
    "uniform noise": uniform_noise,
    "independent pixels": independent_pixels,
    "blobs": blobs,
    "quadrants of 4 digits": quadrants,
    "one digit repeated": one_digit,
    "pixel permutation": pixel_permutation,
    "7×7 tile mosaic": tile_mosaic,
}
EXPECTED = {name: 1 for name in RECOGNISABLE} | {name: 0 for name in NO_NUMBER}


def make_case(name: str, train: np.ndarray, test: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Case ``name``: n images ``(n, 28, 28)`` in [0, 1].

    Args:
        name: a key of :data:`EXPECTED`.
        train: training digits in [0, 1], ``(>= n, 28, 28)``, none of them seen by a judge.
        test: test digits in [0, 1] (only for "held-out test digits").
        n: images to make.
        seed: the case's random draws (each case its own stream).
    """
    if name not in EXPECTED:
        raise KeyError(f"unknown case {name!r}; cases: {', '.join(EXPECTED)}")
    if name == "held-out test digits":
        return test[:n].astype(np.float32)
    rng = np.random.default_rng([seed, list(EXPECTED).index(name)])
    x = train[:n].astype(np.float32)
    fn = RECOGNISABLE.get(name) or NO_NUMBER.get(name)
    return x if fn is None else fn(x, rng).astype(np.float32)
