"""Named experiments from the notes, turned into validated grid points (no Ray here).

Each experiment is a list of discriminator designs built by the designs solver; every design is
crossed with seeds into a :class:`GridPoint` (a design, a seed, the experiments it serves), which
:class:`ganrf.sweep.trial.Trial` turns into one trial. Everything is validated before anything trains.

* ``onelayer``: one conv, k in {1, 3, 5, 7, 9, 11, 13, 28}, image head: the notes'
  ``onelayer_multi_rfs``.
* ``twolayers``: two stride-1 layers equivalent to the same rfs: the notes' ``twolayers_multi_rfs``.
* ``same_depth``: a fixed depth (default 3), rf varies.
* ``same_rf``: a fixed rf (default 7 and 13), depth 1..4, capacity matched within +-10% per rf,
  so depth is not confounded with size: the "rf-equivalent" question.
* ``heads``: the same stacks with an image head and a patch head.
* ``control``: the positive control, the notes' own discriminator (``conv5s2,conv5s2``: rf 13,
  image head) on seeds of its own (:attr:`Space.control_seed` on): it shows whether a preset's
  schedule lets *any* discriminator reach the verdicts, so that "0 of N" can be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ganrf.design.designs import DROPOUT, FAMILIES, HEADS, DesignError, DiscriminatorDesign
from ganrf.design.search import feasible, match_capacity, solve

# The experiments that answer the notes' questions, and the positive control beside them.
QUESTIONS = ("onelayer", "twolayers", "same_depth", "same_rf", "heads")
CONTROL = "control"
EXPERIMENTS = (*QUESTIONS, CONTROL)
# The notes' discriminator: two 5x5 stride-2 convs (64 -> 128 channels), a dense head; rf 13.
CONTROL_LAYERS = "conv5s2,conv5s2"

# Per experiment: default rfs, depths (None: fixed by the experiment), heads.
DEFAULTS: dict[str, dict[str, tuple]] = {
    "onelayer": {"rfs": (1, 3, 5, 7, 9, 11, 13, 28), "depths": (1,), "heads": ("image",)},
    "twolayers": {"rfs": (3, 5, 7, 9, 11, 13), "depths": (2,), "heads": ("image",)},
    "same_depth": {"rfs": (4, 5, 7, 9, 13), "depths": (3,), "heads": ("image",)},
    "same_rf": {"rfs": (7, 13), "depths": (1, 2, 3, 4), "heads": ("image",)},
    "heads": {"rfs": (5, 13), "depths": (1, 2), "heads": ("image", "patch")},
}
# The RGB datasets' grids: a 64 px face from one pixel to half the image (CelebA), a 128 px
# photograph likewise (ImageNet). Every experiment's grid is defined here, once per dataset.
RGB_DEFAULTS: dict[str, dict[str, dict[str, tuple]]] = {
    "celeba": {
        "onelayer": {"rfs": (1, 3, 5, 9, 17, 33), "depths": (1,), "heads": ("image",)},
        "twolayers": {"rfs": (3, 5, 9, 17, 33), "depths": (2,), "heads": ("image",)},
        "same_depth": {"rfs": (5, 9, 17, 33), "depths": (3,), "heads": ("image",)},
        "same_rf": {"rfs": (9, 17), "depths": (1, 2, 3, 4), "heads": ("image",)},
        "heads": {"rfs": (9, 33), "depths": (1, 2), "heads": ("image", "patch")},
    },
    "imagenet": {
        "onelayer": {"rfs": (1, 3, 5, 9, 17, 33, 65), "depths": (1,), "heads": ("image",)},
        "twolayers": {"rfs": (3, 5, 9, 17, 33, 65), "depths": (2,), "heads": ("image",)},
        "same_depth": {"rfs": (5, 9, 17, 33, 65), "depths": (4,), "heads": ("image",)},
        "same_rf": {"rfs": (17, 33), "depths": (1, 2, 3, 4), "heads": ("image",)},
        "heads": {"rfs": (17, 65), "depths": (2, 4), "heads": ("image", "patch")},
    },
}
# Crops of one photograph (sweeps/photo_rf.py, 32 px): two stride-2 layers (rf = k1 + 2 k2 - 2,
# cheap at any kernel) from 4 px structure to most of the crop, each with an image head (one
# verdict per crop) and a patch head (SinGAN's: one verdict per rf-sized patch).
PHOTO_DEFAULTS: dict[str, dict[str, tuple]] = {
    "heads": {"rfs": (4, 7, 13, 25), "depths": (2,), "heads": ("image", "patch")},
    "onelayer": {"rfs": (3, 5, 9, 17), "depths": (1,), "heads": ("patch",)},
}
# The MNIST questions preset's grids (sweeps/mnist_rf.py --preset questions): every question a
# trend over at least 3 configurations, stacks deeper than one layer 16 channels wide (capacity
# matched inside same_rf), one-layer Ds as the notes' (64 channels).
QUESTIONS_DEFAULTS: dict[str, dict[str, tuple]] = {
    **DEFAULTS,
    "onelayer": {"rfs": (1, 3, 5, 9, 13), "depths": (1,), "heads": ("image",)},
    "same_rf": {"rfs": (13,), "depths": (1, 2, 3), "heads": ("image",)},
    "same_depth": {"rfs": (4, 7, 13), "depths": (3,), "heads": ("image",)},
    "heads": {"rfs": (5, 13), "depths": (1,), "heads": ("image", "patch")},
}
FIXED_DEPTH = {"onelayer": 1, "twolayers": 2}

# --family resnet: residual D blocks reach other rfs (odd kernels: without a pool, rf = 1 mod 4;
# ganrf.design.resnet), so its grids are its own: up to 32 px, and from 64 px.
RESNET_DEFAULTS: dict[str, dict[str, dict[str, tuple]]] = {
    "small": {
        "onelayer": {"rfs": (1, 5, 9, 13, 17), "depths": (1,), "heads": ("image",)},
        "twolayers": {"rfs": (5, 9, 13, 17, 21, 25), "depths": (2,), "heads": ("image",)},
        "same_depth": {"rfs": (5, 9, 13, 17, 25), "depths": (3,), "heads": ("image",)},
        "same_rf": {"rfs": (10, 18), "depths": (1, 2, 3, 4), "heads": ("image",)},
        "heads": {"rfs": (9, 17), "depths": (1, 2), "heads": ("image", "patch")},
    },
    "large": {
        "onelayer": {"rfs": (1, 5, 9, 13, 17), "depths": (1,), "heads": ("image",)},
        "twolayers": {"rfs": (5, 9, 17, 33, 48), "depths": (2,), "heads": ("image",)},
        "same_depth": {"rfs": (5, 9, 17, 33, 64), "depths": (4,), "heads": ("image",)},
        "same_rf": {"rfs": (10, 18), "depths": (1, 2, 3, 4), "heads": ("image",)},
        "heads": {"rfs": (17, 48), "depths": (2, 4), "heads": ("image", "patch")},
    },
}
# What a family changes besides the designs: config keys, then Space fields. resnet is SNGAN's
# recipe (Miyato et al. 2018): residual G, hinge loss, spectral norm in D, no dropout. Flags
# (--loss, --norm, --dropout, --set) given with --family still win.
FAMILY_KEYS: dict[str, dict[str, Any]] = {"resnet": {"g.kind": "resnet", "loss.kind": "hinge"}}
FAMILY_SPACE: dict[str, dict[str, Any]] = {"resnet": {"norm": "spectral", "dropout": 0.0}}


def with_family(space: Space, base: dict[str, Any], family: str) -> tuple[Space, dict[str, Any]]:
    """A preset's ``space`` and ``base`` config keys for ``family``: its designs, its recipe
    (:data:`FAMILY_KEYS`, :data:`FAMILY_SPACE`) and, for resnet, its rf grids. Of the rfs a
    preset lists (chosen for the plain stacks) only those the family reaches at every depth of
    the space's experiments are kept; its defaults when none is (``--rfs`` comes later and is
    refused, not filtered, when out of reach)."""
    space = replace(space, family=family, **FAMILY_SPACE.get(family, {}))
    if family == "resnet":
        space = replace(
            space, defaults=RESNET_DEFAULTS["small" if space.image_size <= 32 else "large"]
        )
    if space.rfs:
        reached = tuple(rf for rf in space.rfs if _reachable(space, rf))
        space = replace(space, rfs=reached or None)
    return space, {**base, **FAMILY_KEYS.get(family, {})}


def _reachable(space: Space, rf: int) -> bool:
    for exp in space.experiments:
        if exp == CONTROL:  # a fixed design: the family's rfs do not apply to it
            continue
        fixed = FIXED_DEPTH.get(exp)
        depths = (fixed,) if fixed else space.depths or grid(space, exp)["depths"]
        if not all(feasible(rf, d, space.family, space.image_size) for d in depths):
            return False
    return True


class SpaceError(ValueError):
    """A search space that is invalid or empty; raised before Ray starts."""


@dataclass(frozen=True)
class Space:
    """What to sweep. ``None`` fields take each experiment's defaults."""

    experiments: tuple[str, ...] = ("onelayer",)
    rfs: tuple[int, ...] | None = None
    depths: tuple[int, ...] | None = None
    heads: tuple[str, ...] | None = None
    seeds: int = 1
    family: str = "stride1"
    image_size: int = 28
    in_channels: int = 1
    # The same for every design, so dropout does not differ between compared designs.
    dropout: float = DROPOUT
    norm: str = "none"
    capacity_tolerance: float = 0.10
    # First-layer channels of designs deeper than one layer (64: the notes'). A stride-1 stack
    # convolves them into themselves at full resolution, so its cost grows with their square.
    stack_channels: int = 64
    # The control's seeds are control_seed, control_seed + 1, ...: its own, never a question's.
    control_seed: int = 1000
    defaults: dict[str, dict[str, tuple]] = field(default_factory=lambda: DEFAULTS)


def control_design(space: Space) -> DiscriminatorDesign:
    """The control: the notes' discriminator on the space's input, norm and dropout (the same
    for every design of a sweep), whatever its rfs, depths, heads or family."""
    return DiscriminatorDesign.from_spec(
        CONTROL_LAYERS,
        head="image",
        norm=space.norm,
        dropout=space.dropout,
        image_size=space.image_size,
        in_channels=space.in_channels,
    )


def grid(space: Space, exp: str) -> dict[str, tuple]:
    """``exp``'s default rfs, depths and heads in ``space``.

    Raises:
        SpaceError: the space's grids have none for ``exp``, in one sentence.
    """
    if exp not in space.defaults:
        raise SpaceError(
            f"experiment {exp!r} has no default grid for {space.image_size}px images; choose "
            f"from {', '.join(space.defaults)}"
        )
    return space.defaults[exp]


def _designs(space: Space, exp: str) -> list[DiscriminatorDesign]:
    """The designs of one experiment."""
    if exp == CONTROL:
        return [control_design(space)]
    d = grid(space, exp)
    rfs = space.rfs or d["rfs"]
    heads = space.heads or d["heads"]
    if exp in FIXED_DEPTH:
        depths = (FIXED_DEPTH[exp],)
        if space.depths and FIXED_DEPTH[exp] not in space.depths:
            raise SpaceError(
                f"experiment {exp!r} has depth {FIXED_DEPTH[exp]}, but --depths is "
                f"{','.join(map(str, space.depths))}; drop --depths or choose same_depth / same_rf"
            )
    else:
        depths = space.depths or d["depths"]
    kw = dict(
        family=space.family,
        image_size=space.image_size,
        in_channels=space.in_channels,
        norm=space.norm,
        dropout=space.dropout,
    )
    out: list[DiscriminatorDesign] = []
    for head in heads:
        for rf in rfs:
            group = []
            for depth in depths:
                base = space.stack_channels if depth > 1 else 64
                try:
                    design = solve(rf, depth, head=head, base_channels=base, **kw)[0]
                except DesignError as e:
                    raise SpaceError(f"experiment {exp!r}, rf {rf}, depth {depth}: {e}") from None
                group.append(design)
            if exp == "same_rf" and len(group) > 1:
                try:
                    group = match_capacity(group, space.capacity_tolerance)
                except DesignError as e:
                    raise SpaceError(f"experiment 'same_rf', rf {rf}: {e}") from None
            out += group
    return out


@dataclass(frozen=True)
class GridPoint:
    """One discriminator design x seed of a sweep, and the experiments it serves."""

    design: DiscriminatorDesign
    seed: int
    experiments: tuple[str, ...]


# Config keys every grid point sets (its design's, :meth:`TrainConfig.with_design`, and the seed),
# and the sweep flag that controls each: a --set of one of them would be silently overwritten, so
# the sweep refuses it and names the flag.
GRID_KEYS = {
    "d.layers": "--experiments/--rfs/--depths",
    "d.channels": "--experiments (same_rf matches capacity)",
    "d.head": "--heads",
    "d.norm": "--norm",
    "d.dropout": "--dropout",
    "seed": "--seeds",
}


def build_grid(space: Space) -> list[GridPoint]:
    """Grid points for ``space``: designs x seeds, deduplicated across experiments (a design
    two experiments share is trained once and counted in both).

    Raises:
        SpaceError: unknown names, infeasible designs, or an empty grid, in one sentence.
    """
    unknown = [e for e in space.experiments if e not in EXPERIMENTS]
    if unknown:
        raise SpaceError(f"unknown experiment {unknown[0]!r}; choose from {', '.join(EXPERIMENTS)}")
    if not space.experiments:
        raise SpaceError(f"no experiments chosen; choose from {', '.join(EXPERIMENTS)}")
    if space.family not in FAMILIES:
        raise SpaceError(f"unknown family {space.family!r}; choose from {', '.join(FAMILIES)}")
    for h in space.heads or ():
        if h not in HEADS:
            raise SpaceError(f"unknown head {h!r}; choose from {', '.join(HEADS)}")
    if space.seeds < 1:
        raise SpaceError(f"--seeds must be at least 1, got {space.seeds}")
    for name, values in (("--rfs", space.rfs), ("--depths", space.depths)):
        if values is not None and (not values or min(values) < 1):
            raise SpaceError(
                f"{name} must be positive whole numbers, got {','.join(map(str, values))}"
            )
    points: dict[tuple, GridPoint] = {}
    for exp in space.experiments:
        first = space.control_seed if exp == CONTROL else 0
        for design in _designs(space, exp):
            for seed in range(first, first + space.seeds):
                key = (design, seed)
                if key in points:
                    old = points[key]
                    points[key] = replace(old, experiments=(*old.experiments, exp))
                else:
                    points[key] = GridPoint(design, seed, (exp,))
    if not points:
        raise SpaceError("the chosen experiments, rfs, depths and heads leave an empty grid")
    return list(points.values())
