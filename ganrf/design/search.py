"""Finding designs: the rf-equivalence solver and capacity matching.

Which (rf, depth) pairs a family can reach is closed-form, and the most balanced kernel split is
built directly, so every request, feasible or not, answers at once; every split is enumerated only
when asked (``exhaustive=True``). Re-exported by :mod:`ganrf.design.designs`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import replace

from ganrf.design.designs import (
    DROPOUT,
    FAMILIES,
    ConvLayer,
    DesignError,
    DiscriminatorDesign,
    default_channels,
    param_count,
)
from ganrf.design.resnet_search import feasible_resnet, solve_resnet

__all__ = ["feasible", "solve", "match_capacity"]


def stride2_max_depth(image_size: int) -> int:
    """How many stride-2 layers leave a feature map on an ``image_size`` input (``ceil`` halving,
    as odd kernels padded ``(k-1)//2`` give)."""
    depth, size = 0, image_size
    while size > 1:
        size = (size + 1) // 2
        depth += 1
    return depth


def feasible(rf: int, depth: int, family: str = "stride1", image_size: int = 28) -> bool:
    """Whether some ``family`` design of ``depth`` layers has rf exactly ``rf``, in closed form.

    * stride1: rf = 1 + sum(k_i - 1) with every k_i >= 2, so rf > 1 is reachable iff
      depth <= rf - 1 (rf 1 only by a 1x1 stack, at any depth);
    * stride2: rf - 1 = sum (k_i - 1) 2^(i-1) with k_i >= 2, reachable iff rf - 1 >= 2^depth - 1
      and the depth leaves a feature map;
    * dilated (3x3 kernels): rf = 1 + 2 sum(d_i) with d_i >= 1, reachable iff rf - 1 is even and
      (rf - 1) / 2 >= depth;
    * resnet (blocks of two odd k_i convs, some pooling): rf = 1 + sum J_i (2 (k_i - 1) + p_i),
      searched (:func:`ganrf.design.resnet_search.feasible_resnet`).
    """
    if family == "resnet":
        return feasible_resnet(rf, depth, image_size)
    if family not in FAMILIES or depth < 1 or not 1 <= rf <= image_size:
        return False
    if rf == 1:
        return family == "stride1"
    if family == "stride1":
        return depth <= rf - 1
    if family == "stride2":  # 2^depth - 1 <= rf - 1, i.e. depth <= floor(log2(rf))
        return depth <= stride2_max_depth(image_size) and depth <= rf.bit_length() - 1
    return (rf - 1) % 2 == 0 and (rf - 1) // 2 >= depth


def _balanced(rf: int, depth: int, family: str) -> tuple[int, ...]:
    """The kernels (dilations for "dilated") of the most balanced feasible split: the smallest
    spread max - min, and among those the largest kernels first.

    stride1 and dilated share out ``rf - 1`` (``(rf - 1) / 2``) as evenly as possible, larger
    parts first. For stride2 write ``k_i - 1 = a_i``: with ``m = 2^depth - 1`` and
    ``rf - 1 = q m + b``, ``0 <= b < m``, every ``a_i = q`` when ``b = 0``; otherwise
    ``a_i = q + (bit i of b)`` is the only split of spread 1 (a spread of 0 needs ``m | rf - 1``).
    """
    if family == "stride2":
        q, b = divmod(rf - 1, 2**depth - 1)
        return tuple(q + 1 + ((b >> i) & 1) for i in range(depth))
    total = rf - 1 if family == "stride1" else (rf - 1) // 2
    q, r = divmod(total, depth)
    parts = (q + 1,) * r + (q,) * (depth - r)
    return tuple(p + 1 for p in parts) if family == "stride1" else parts


def _partitions(total: int, parts: int, largest: int) -> Iterator[tuple[int, ...]]:
    """Non-increasing tuples of ``parts`` integers in ``[1, largest]`` summing to ``total``."""
    if parts == 0:
        if total == 0:
            yield ()
        return
    for first in range(min(largest, total - (parts - 1)), 0, -1):
        if first * parts < total:
            return
        for rest in _partitions(total - first, parts - 1, first):
            yield (first, *rest)


def _stride2_kernels(rest: int, depth: int, i: int = 0) -> Iterator[tuple[int, ...]]:
    """Kernel tuples for layers i.. with sum_j (k_j - 1) 2^j == rest, every k_j >= 2."""
    if depth == 0:
        if rest == 0:
            yield ()
        return
    floor_later = sum(2**j for j in range(i + 1, i + depth))  # later layers at k = 2
    for grow in range(1, (rest - floor_later) // 2**i + 1):
        for tail in _stride2_kernels(rest - grow * 2**i, depth - 1, i + 1):
            yield (grow + 1, *tail)


def _every_split(rf: int, depth: int, family: str) -> Iterator[tuple[int, ...]]:
    """Every kernel tuple (dilation tuple for "dilated") of a feasible request; stride1 and
    dilated ones non-increasing, so permutations are not listed twice."""
    if family == "stride2":
        return _stride2_kernels(rf - 1, depth)
    if family == "stride1":
        return (tuple(p + 1 for p in ps) for ps in _partitions(rf - 1, depth, rf - 1))
    return _partitions((rf - 1) // 2, depth, (rf - 1) // 2)


def _spread(ks: tuple[int, ...]) -> tuple[int, ...]:
    return (max(ks) - min(ks), *(-k for k in ks))


def solve(
    rf: int,
    depth: int,
    *,
    family: str = "stride1",
    image_size: int = 28,
    in_channels: int = 1,
    head: str = "image",
    norm: str = "none",
    dropout: float = DROPOUT,
    base_channels: int = 64,
    exhaustive: bool = False,
) -> list[DiscriminatorDesign]:
    """Designs of ``depth`` conv layers whose rf is exactly ``rf``.

    Args:
        rf: target rf in pixels (square).
        depth: number of conv layers.
        family: ``"stride1"`` (all stride 1: rf = 1 + sum(k - 1)), ``"stride2"`` (every layer
            stride 2, the notes' downsampling: rf = 1 + sum((k_i - 1) 2^(i-1))),
            ``"dilated"`` (3x3 kernels at stride 1 with dilations: rf = 1 + 2 sum(d)) or
            ``"resnet"`` (``depth`` residual blocks: :func:`ganrf.design.resnet_search.solve_resnet`).
        exhaustive: list every kernel split, most balanced first; by default only the most
            balanced one (kernels differ as little as possible: rf 7 at depth 3 gives 3x3, 3x3,
            3x3).

    Every layer must grow the rf (kernel >= 2), except a pure 1x1 stack for rf 1.

    Raises:
        DesignError: naming the nearest feasible rf or depth.
    """
    if family not in FAMILIES:
        raise DesignError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    if depth < 1:
        raise DesignError(f"depth {depth} is impossible; a discriminator needs depth >= 1")
    if family == "resnet":
        return solve_resnet(  # type: ignore[return-value]
            rf,
            depth,
            image_size=image_size,
            in_channels=in_channels,
            head=head,
            norm=norm,
            dropout=dropout,
            base_channels=base_channels,
            exhaustive=exhaustive,
        )
    _check_plain_request(rf, depth, family, image_size)
    kw = dict(head=head, norm=norm, dropout=dropout, image_size=image_size, in_channels=in_channels)
    if rf == 1:
        layers = tuple(ConvLayer(1, channels=base_channels) for _ in range(depth))
        return [DiscriminatorDesign(layers, **kw)]
    if exhaustive:
        tuples = sorted(_every_split(rf, depth, family), key=_spread)
    else:
        tuples = [_balanced(rf, depth, family)]
    designs = [_stack(ks, family, base_channels, kw) for ks in tuples]
    for d in designs:  # the arithmetic above and rf.py must agree
        assert d.rf == rf, (d.spec_string, d.rf, rf)
    return designs


def _check_plain_request(rf: int, depth: int, family: str, image_size: int) -> None:
    """Refuse, naming the nearest thing that works, an rf and depth no plain ``family`` stack
    reaches on an ``image_size`` input."""
    if rf < 1:
        raise DesignError(f"rf {rf} is impossible; the smallest rf is 1 (a 1x1 conv)")
    if image_size < 1:
        raise DesignError(f"image size {image_size} must be positive")
    if rf > image_size:
        raise DesignError(
            f"rf {rf} is larger than the {image_size}px input; the largest useful rf is "
            f"{image_size}"
        )
    if family == "stride2" and depth > (max_depth := stride2_max_depth(image_size)):
        raise DesignError(
            f"depth {depth} of stride-2 layers leaves no feature map on a {image_size}px "
            f"input; the deepest is {max_depth}"
        )
    if rf == 1 and family != "stride1":
        raise DesignError(
            f"rf 1 needs 1x1 kernels at stride 1; use family 'stride1', not {family!r}"
        )
    if rf > 1 and not feasible(rf, depth, family, image_size):
        raise DesignError(_infeasible(rf, depth, family, image_size))


def _stack(ks: tuple[int, ...], family: str, base_channels: int, kw: dict) -> DiscriminatorDesign:
    """The ``family`` design of one split ``ks``: its kernels (its dilations for "dilated", on
    3x3 kernels), default channels from ``base_channels``."""
    if family == "dilated":
        convs = [ConvLayer(3, 1, d) for d in ks]
    else:
        convs = [ConvLayer(k, 2 if family == "stride2" else 1) for k in ks]
    chans = default_channels([c.stride for c in convs], base_channels)
    return DiscriminatorDesign(tuple(replace(c, channels=ch) for c, ch in zip(convs, chans)), **kw)


def _infeasible(rf: int, depth: int, family: str, image_size: int) -> str:
    """The error for an unreachable request, naming the nearest feasible rf and depth. No
    feasible rf exceeds the image and no feasible depth exceeds it either, so both searches stop
    at ``image_size``."""
    rfs = [r for r in range(1, image_size + 1) if feasible(r, depth, family, image_size)]
    near_rf = sorted(rfs, key=lambda r: (abs(r - rf), r))[:2]
    depths = [d for d in range(1, image_size + 1) if feasible(rf, d, family, image_size)]
    near_depth = sorted(depths, key=lambda d: (abs(d - depth), d))[:2]
    what = f"no {family} design of depth {depth} has rf {rf}"
    options = []
    if near_rf:
        options.append(f"rf {' or '.join(map(str, sorted(near_rf)))} at depth {depth}")
    if near_depth:
        options.append(f"depth {' or '.join(map(str, sorted(near_depth)))} for rf {rf}")
    hint = "; nearest feasible: " + ", or ".join(options) if options else ""
    return what + hint


# --------------------------------------------------------------------------------------------
# Capacity matching
# --------------------------------------------------------------------------------------------


def match_capacity(
    designs: list[DiscriminatorDesign], tolerance: float = 0.10
) -> list[DiscriminatorDesign]:
    """Scale each design's channels so every parameter count is within ``tolerance`` of the
    group's median, so a comparison of rf is not a comparison of size.

    Channel ratios inside a design are kept; a single width factor per design is searched.

    Raises:
        DesignError: when some design cannot reach the band (say which, and by how much).
    """
    if not designs:
        raise DesignError("match_capacity needs at least one design")
    target = statistics.median(param_count(d) for d in designs)
    out = []
    for d in designs:
        best, best_err = d, abs(param_count(d) - target) / target
        lo, hi = 1.0 / 64, 64.0
        for _ in range(60):  # bisection on the width factor; param count grows with width
            mid = (lo * hi) ** 0.5
            cand = d.scaled(mid)
            n = param_count(cand)
            err = abs(n - target) / target
            if err < best_err:
                best, best_err = cand, err
            if n < target:
                lo = mid
            else:
                hi = mid
        if best_err > tolerance:
            raise DesignError(
                f"{d.name} cannot be brought within {tolerance:.0%} of the group's median "
                f"{target:.0f} parameters (closest {param_count(best)}); loosen the tolerance "
                "or compare designs of closer size"
            )
        out.append(best)
    return out
