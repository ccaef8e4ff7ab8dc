"""Rf targeting for the ``resnet`` family (no torch): which blocks, kernels and pools give a
residual discriminator (:class:`ganrf.design.resnet.ResidualDesign`) a target rf at a depth.
"""

from __future__ import annotations

import functools
import itertools

from ganrf.design.designs import DesignError, default_channels
from ganrf.design.resnet import KERNELS, MAX_SOLVED_BLOCKS, ResBlock, ResidualDesign


def rf_closed_form(kernels: tuple[int, ...], downs: tuple[bool, ...]) -> int:
    """``1 + sum_i J_i (2 (k_i - 1) + p_i)``: :mod:`ganrf.design.resnet`'s formula."""
    rf, jump = 1, 1
    for k, down in zip(kernels, downs):
        rf += jump * (2 * (k - 1) + int(down))
        jump *= 2 if down else 1
    return rf


def _max_pools(image_size: int) -> int:
    """How many 2x2 pools leave a map on ``image_size`` (floor halving)."""
    n = 0
    while image_size >= 2:
        image_size //= 2
        n += 1
    return n


@functools.lru_cache(maxsize=64)  # a sweep's grid asks the same depths again and again
def _splits(depth: int, image_size: int) -> tuple:
    """Every (kernels, pools) of ``depth`` blocks that leaves a map, with its rf."""
    return tuple(
        (rf_closed_form(kernels, downs), (kernels, downs))
        for downs in itertools.product((True, False), repeat=depth)
        if sum(downs) <= _max_pools(image_size)
        for kernels in itertools.product(KERNELS, repeat=depth)
    )


def _preference(split) -> tuple:
    """Most SNGAN-like first: kernels alike, near 3, larger first; pools early (cheap)."""
    kernels, downs = split
    return (
        max(kernels) - min(kernels),
        sum(abs(k - 3) for k in kernels),
        tuple(-k for k in kernels),
        tuple(not d for d in downs),
    )


def feasible_resnet(rf: int, depth: int, image_size: int = 32) -> bool:
    if not 1 <= depth <= MAX_SOLVED_BLOCKS or not 1 <= rf <= image_size:
        return False
    return any(r == rf for r, _ in _splits(depth, image_size))


def solve_resnet(
    rf: int,
    depth: int,
    *,
    image_size: int = 32,
    in_channels: int = 3,
    head: str = "image",
    norm: str = "spectral",
    dropout: float = 0.0,
    base_channels: int = 64,
    exhaustive: bool = False,
) -> list[ResidualDesign]:
    """Residual designs of ``depth`` blocks with rf exactly ``rf`` (at most the image).

    Kernels come from :data:`KERNELS`, any block may pool (as long as a map is left); the most
    SNGAN-like split comes first (:func:`_preference`), and only it unless ``exhaustive``.

    Raises:
        DesignError: naming the nearest rfs reachable at this depth.
    """
    if not 1 <= depth <= MAX_SOLVED_BLOCKS:  # KERNELS^depth * 2^depth splits are enumerated
        raise DesignError(f"the solver takes 1 to {MAX_SOLVED_BLOCKS} residual blocks, not {depth}")
    reached = _splits(depth, image_size)
    hits = [split for r, split in reached if r == rf] if rf <= image_size else []
    splits = sorted(hits, key=_preference)
    if not splits:
        reach = sorted(
            {r for r, _ in reached if r <= image_size} - {rf},
            key=lambda r: (abs(r - rf), r),
        )[:2]
        near = f"; nearest at depth {depth}: rf {' or '.join(map(str, sorted(reach)))}"
        raise DesignError(
            f"no resnet design of {depth} blocks has rf {rf} on a {image_size}px input"
            + (near if reach else "")
        )
    designs = []
    for kernels, downs in splits if exhaustive else splits[:1]:
        chans = default_channels([2 if d else 1 for d in downs], base_channels)
        blocks = tuple(ResBlock(k, d, c) for k, d, c in zip(kernels, downs, chans))
        design = ResidualDesign(blocks, head, norm, dropout, image_size, in_channels)
        assert design.rf == rf, (design.spec_string, design.rf, rf)  # closed form = chain
        designs.append(design)
    return designs
