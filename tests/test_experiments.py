"""Named experiments -> validated grid points, before Ray."""

from dataclasses import replace

import pytest

from ganrf.design.designs import param_count
from ganrf.sweep.experiments import Space, SpaceError, build_grid


def test_onelayer_is_the_notes_grid():
    points = build_grid(Space(experiments=("onelayer",)))
    assert [p.design.rf for p in points] == [1, 3, 5, 7, 9, 11, 13, 28]
    assert [p.design.spec_string for p in points][:3] == ["conv1", "conv3", "conv5"]
    assert all(p.design.head == "image" and p.design.decision_rf == 28 for p in points)
    assert all(p.design.dropout == 0.0 for p in points)  # the notes' onelayer has no dropout


def test_twolayers_equivalent_stacks():
    points = build_grid(Space(experiments=("twolayers",), rfs=(5, 7)))
    assert [p.design.spec_string for p in points] == ["conv3,conv3", "conv4,conv4"]
    assert all(p.design.depth == 2 for p in points)


def test_same_rf_capacity_matched_within_ten_percent():
    points = build_grid(Space(experiments=("same_rf",), rfs=(7,)))
    assert [p.design.depth for p in points] == [1, 2, 3, 4]
    counts = [param_count(p.design) for p in points]
    median = sorted(counts)[len(counts) // 2]
    assert all(abs(c - median) / median <= 0.10 for c in counts)
    assert all(p.design.rf == 7 for p in points)


def test_heads_pairs_image_and_patch():
    points = build_grid(Space(experiments=("heads",), rfs=(5,), depths=(2,)))
    assert {(p.design.spec_string, p.design.head) for p in points} == {
        ("conv3,conv3", "image"),
        ("conv3,conv3", "patch"),
    }
    patch = next(p for p in points if p.design.head == "patch")
    assert patch.design.decision_rf == 5


def test_seeds_multiply_and_duplicates_merge():
    points = build_grid(Space(experiments=("onelayer", "same_rf"), rfs=(7,), seeds=2))
    # onelayer conv7 and same_rf depth 1 (capacity-matched, other channels) differ; seeds double
    assert len(points) == 2 * (1 + 4)
    merged = build_grid(Space(experiments=("onelayer", "twolayers"), rfs=(5,)))
    assert len(merged) == 2
    dup = build_grid(
        Space(experiments=("onelayer", "heads"), rfs=(5,), depths=(1,), heads=("image",))
    )
    assert len(dup) == 1 and dup[0].experiments == ("onelayer", "heads")


@pytest.mark.parametrize(
    "space, match",
    [
        (Space(experiments=("threelayers",)), "unknown experiment 'threelayers'"),
        (Space(experiments=()), "no experiments chosen"),
        (Space(heads=("global",)), "unknown head 'global'"),
        (Space(family="stride3"), "unknown family"),
        (Space(seeds=0), "--seeds must be at least 1"),
        (Space(rfs=(0,)), "--rfs must be positive"),
        (Space(experiments=("onelayer",), depths=(2,)), "has depth 1, but --depths is 2"),
        (
            Space(experiments=("same_depth",), rfs=(3,), depths=(3,)),
            "rf 3, depth 3: no stride1 design",
        ),
        (Space(experiments=("onelayer",), rfs=(29,)), "larger than the 28px input"),
    ],
)
def test_invalid_space_one_clear_error(space, match):
    with pytest.raises(SpaceError, match=match):
        build_grid(space)


def test_a_carried_design_sets_exactly_the_grid_keys():
    """The keys a grid point's design sets in a trial's config (with the seed: GRID_KEYS),
    which a --set cannot change."""
    from ganrf.config import TrainConfig
    from ganrf.design.designs import DiscriminatorDesign
    from ganrf.sweep.experiments import GRID_KEYS

    design = DiscriminatorDesign.from_spec(
        "conv3,conv3", channels="5,7", head="patch", norm="batch", dropout=0.2
    )
    default = TrainConfig().to_dict()
    carried = TrainConfig().with_design(design).to_dict()
    changed = {k: v for k, v in carried.items() if default[k] != v}
    assert changed == {
        "d.layers": "conv3,conv3",
        "d.channels": "5,7",
        "d.head": "patch",
        "d.norm": "batch",
        "d.dropout": 0.2,
    }
    assert set(changed) | {"seed"} == set(GRID_KEYS)


def test_family_resnet_brings_its_recipe_and_grids_and_flags_still_win():
    from ganrf.design.resnet import ResidualDesign
    from ganrf.sweep.experiments import EXPERIMENTS, RESNET_DEFAULTS, with_family

    space, base = with_family(Space(image_size=128, in_channels=3), {"g.kind": "dcgan"}, "resnet")
    assert base == {"g.kind": "resnet", "loss.kind": "hinge"}
    assert (space.norm, space.dropout, space.defaults) == (
        "spectral",
        0.0,
        RESNET_DEFAULTS["large"],
    )
    for size in (28, 64):  # every default grid of the family is feasible
        space, _ = with_family(Space(image_size=size, experiments=EXPERIMENTS), {}, "resnet")
        points = build_grid(space)
        # every question's design is residual; the control stays the notes' plain convs
        assert all(isinstance(p.design, ResidualDesign) for p in points if p.seed < 1000)
        assert {p.design.spec_string for p in points if p.seed >= 1000} == {"conv5s2,conv5s2"}
    same_rf = [p.design for p in points if "same_rf" in p.experiments and p.design.rf == 10]
    assert [d.depth for d in same_rf] == [1, 2, 3, 4]
    # a preset's plain-stack rfs: those a single block cannot reach (3, 7) are dropped
    laptop = Space(experiments=("onelayer",), rfs=(1, 3, 5, 7, 13))
    assert with_family(laptop, {}, "resnet")[0].rfs == (1, 5, 13)
    assert with_family(replace(laptop, rfs=(3, 7)), {}, "resnet")[0].rfs is None


def test_an_experiment_without_a_grid_is_one_sentence_not_a_key_error():
    from ganrf.sweep.experiments import DEFAULTS, Space, SpaceError, build_grid

    partial = {k: v for k, v in DEFAULTS.items() if k != "heads"}
    with pytest.raises(SpaceError) as caught:
        build_grid(Space(experiments=("heads",), defaults=partial))
    assert str(caught.value) == (
        "experiment 'heads' has no default grid for 28px images; choose from onelayer, "
        "twolayers, same_depth, same_rf"
    )


def test_every_experiment_grid_is_defined_in_experiments_py():
    # adding an experiment touches one file: no sweep script holds rf grids of its own (the
    # MNIST questions preset's narrower grids are QUESTIONS_DEFAULTS there too)
    from pathlib import Path

    from ganrf.sweep.experiments import DEFAULTS, QUESTIONS, QUESTIONS_DEFAULTS, RGB_DEFAULTS

    root = Path(__file__).resolve().parents[1]
    for script in sorted((root / "sweeps").glob("*.py")):
        assert '"rfs"' not in script.read_text(), script.name
    for dataset, grids in {**RGB_DEFAULTS, "mnist questions": QUESTIONS_DEFAULTS}.items():
        assert set(grids) == set(QUESTIONS), dataset
    assert set(DEFAULTS) == set(QUESTIONS)
