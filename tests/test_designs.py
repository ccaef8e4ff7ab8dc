"""Designs: rf from themselves, the equivalence solver, capacity matching, bad requests."""

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganrf.design import receptive_field
from ganrf.design.designs import (
    ConvLayer,
    DesignError,
    DiscriminatorDesign,
    notes_initial,
    onelayer,
    param_count,
)
from ganrf.design.norms import norm_reason
from ganrf.design.rf import RFReport
from ganrf.design.search import feasible, match_capacity, solve
from ganrf.models import build_discriminator

ROOT = Path(__file__).resolve().parents[1]


def test_notes_initial_discriminator_is_rf_13_with_whole_image_decision():
    d = notes_initial()
    assert d.spec_string == "conv5s2,conv5s2"
    assert d.channels == (64, 128)
    assert d.rf == 13 and d.decision_rf == 28


@pytest.mark.parametrize("k", [1, 3, 5, 7, 9, 11, 13, 28])
def test_onelayer_multi_rfs_designs(k):
    d = onelayer(k)
    assert d.rf == k and d.depth == 1 and d.decision_rf == 28


@pytest.mark.parametrize(
    "depth, expected", [(1, "conv7"), (2, "conv4,conv4"), (3, "conv3,conv3,conv3")]
)
def test_stride1_equivalence_rf7(depth, expected):
    (d,) = solve(7, depth)
    assert d.spec_string == expected and d.rf == 7


def test_stride2_family_recovers_notes_design():
    (d,) = solve(13, 2, family="stride2")
    assert d.spec_string == "conv5s2,conv5s2"
    assert d.channels == (64, 128)


def test_exhaustive_lists_every_split_each_exact():
    designs = solve(7, 2, exhaustive=True)
    assert [d.spec_string for d in designs] == ["conv4,conv4", "conv5,conv3", "conv6,conv2"]
    designs = solve(13, 2, family="stride2", exhaustive=True)
    assert {d.spec_string for d in designs} == {
        "conv5s2,conv5s2",
        "conv7s2,conv4s2",
        "conv3s2,conv6s2",
        "conv9s2,conv3s2",
        "conv11s2,conv2s2",
    }


def test_dilated_family():
    (d,) = solve(9, 2, family="dilated")
    assert d.spec_string == "conv3d2,conv3d2" and d.rf == 9


def test_rf1_is_a_pointwise_stack():
    (d,) = solve(1, 3)
    assert d.spec_string == "conv1,conv1,conv1" and d.rf == 1


def _feasible(rf, depth, family):
    try:
        solve(rf, depth, family=family)
    except DesignError:
        return False
    return True


CANDIDATES = [
    (rf, depth, family)
    for family, rfs, depths in [
        ("stride1", [2, 3, 5, 7, 9, 13, 28], [1, 2, 3, 4]),
        ("stride2", [4, 7, 13, 15, 28], [1, 2, 3]),
        ("dilated", [3, 5, 9, 13], [1, 2, 3]),
    ]
    for rf in rfs
    for depth in depths
]
# Only feasible requests, so every collected case measures something; infeasible ones are
# tested for their error message below.
GRID = [
    (rf, depth, family, head, norm)
    for rf, depth, family in CANDIDATES
    if _feasible(rf, depth, family)
    for head, norm in [
        ("image", "none"),
        ("patch", "batch"),
        ("patch", "spectral"),
        ("patch", "instance"),
    ]
]


@pytest.mark.parametrize("rf, depth, family, head, norm", GRID)
def test_every_solver_output_remeasured_on_built_module(rf, depth, family, head, norm):
    designs = solve(
        rf, depth, family=family, head=head, norm=norm, base_channels=4, exhaustive=True
    )
    assert designs
    for d in designs:
        module = build_discriminator(d)
        rep = receptive_field(module, (1, 28, 28))  # training mode, as it trains
        assert rep.size == (rf, rf) == (d.rf, d.rf)
        assert rep.decision_rf == (d.decision_rf, d.decision_rf)
        assert rep.output_grid == d.report.output_grid
        assert sum(p.numel() for p in module.parameters()) == param_count(d)


def test_grid_covers_every_family_with_most_requests_feasible():
    feasible = {(rf, depth, family) for rf, depth, family, *_ in GRID}
    assert {f for *_, f in feasible} == {"stride1", "stride2", "dilated"}
    assert len(feasible) >= 0.6 * len(CANDIDATES)


def test_patch_head_keeps_decision_rf_image_head_does_not():
    (patch,) = solve(7, 3, head="patch")
    (image,) = solve(7, 3, head="image")
    assert patch.decision_rf == 7 and patch.report.output_grid == (28, 28)
    assert image.decision_rf == 28 and image.report.output_grid == (1, 1)


def test_batchnorm_design_reports_whole_decision_and_batch_mixing():
    (d,) = solve(7, 2, head="patch", norm="batch")
    assert d.decision_rf == 28 and d.report.mixes_batch


def test_match_capacity_within_ten_percent_and_rf_unchanged():
    group = [solve(7, depth)[0] for depth in (1, 2, 3)] + [solve(13, 2, family="stride2")[0]]
    before = [param_count(d) for d in group]
    assert max(before) / min(before) > 2  # unmatched, capacity differs a lot
    matched = match_capacity(group)
    counts = [param_count(d) for d in matched]
    median = sorted(counts)[len(counts) // 2]
    assert all(abs(c - median) / median <= 0.10 for c in counts)
    assert [d.rf for d in matched] == [d.rf for d in group]


def test_scaled_keeps_rf():
    d = notes_initial().scaled(0.25)
    assert d.channels == (16, 32) and d.rf == 13


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: solve(3, 4), r"nearest feasible: rf 1 or 5 at depth 4, or depth 1 or 2 for rf 3"),
        (lambda: solve(30, 1), "larger than the 28px input; the largest useful rf is 28"),
        (lambda: solve(7, 0), "depth >= 1"),
        (lambda: solve(0, 1), "smallest rf is 1"),
        (lambda: solve(-3, 1), "smallest rf is 1"),
        (lambda: solve(7, 1, image_size=0), "must be positive"),
        (lambda: solve(13, 6, family="stride2"), "the deepest is 5"),
        (lambda: solve(8, 2, family="dilated"), "nearest feasible: rf 7 or 9 at depth 2"),
        (lambda: solve(7, 2, family="stride3"), "unknown family 'stride3'"),
        (lambda: solve(7, 2, head="global"), "unknown head 'global'"),
        (lambda: solve(7, 2, norm="layer"), "unknown norm 'layer'"),
        (lambda: DiscriminatorDesign(()), "at least one conv layer"),
        (lambda: DiscriminatorDesign((ConvLayer(0),)), "must all be >= 1"),
        (lambda: DiscriminatorDesign((ConvLayer(3, channels=-1),)), "must all be >= 1"),
        (lambda: DiscriminatorDesign.from_spec("conv5s2,conv5s2", channels=(64,)), "one per layer"),
        (lambda: DiscriminatorDesign.from_spec("conv3,maxpool2"), "square conv layers only"),
        (lambda: notes_initial().scaled(0), "width multiplier must be positive"),
    ],
)
def test_impossible_requests_one_clear_error(call, match):
    with pytest.raises(DesignError, match=match):
        call()


def test_from_spec_round_trip():
    d = DiscriminatorDesign.from_spec("conv5s2,conv5s2", head="patch")
    assert d.spec_string == "conv5s2,conv5s2" and d.channels == (64, 128) and d.head == "patch"
    again = DiscriminatorDesign.from_spec(
        d.spec_string, channels=d.to_dict()["channels"], head="patch"
    )
    assert again == d


def test_built_module_forward_shapes():
    x = torch.randn(3, 1, 28, 28)
    assert build_discriminator(notes_initial())(x).shape == (3, 1)
    (p,) = solve(7, 2, head="patch")
    assert build_discriminator(p)(x).shape == (3, 1, 28, 28)


# --------------------------------------------------------------------------------------------
# The closed-form solver against brute force
# --------------------------------------------------------------------------------------------


def _rf_of(layers):
    """The notes' backward formula over (kernel, stride, dilation) layers, written here anew."""
    rf = 1
    for k, s, d in reversed(layers):
        rf = (rf - 1) * s + d * (k - 1) + 1
    return rf


def _brute_force(max_rf, max_depth):
    """Every kernel (stride1, stride2) or dilation (dilated) tuple with rf <= max_rf, by
    enumeration: {(family, rf, depth): [tuple, ...]}. stride1 and dilated tuples are
    non-increasing (their order does not change the rf); stride2 tuples are in layer order."""
    found = {}
    for depth in range(1, max_depth + 1):
        for ks in itertools.combinations_with_replacement(range(max_rf, 1, -1), depth):
            rf = _rf_of([(k, 1, 1) for k in ks])
            found.setdefault(("stride1", rf, depth), []).append(ks)
        for ds in itertools.combinations_with_replacement(range(max_rf // 2, 0, -1), depth):
            rf = _rf_of([(3, 1, d) for d in ds])
            found.setdefault(("dilated", rf, depth), []).append(ds)
        for ks in itertools.product(range(2, max_rf + 1), repeat=min(depth, 3)):
            if depth > 3:  # 2^4 > 15: no stride-2 stack of depth 4 or more has rf <= 15
                break
            rf = _rf_of([(k, 2, 1) for k in ks])
            found.setdefault(("stride2", rf, depth), []).append(ks)
    return found


BRUTE = _brute_force(15, 5)
SMALL = [
    (family, rf, depth)
    for family in ("stride1", "stride2", "dilated")
    for rf in range(2, 16)
    for depth in range(1, 6)
]


def _balance_key(ks):
    return (max(ks) - min(ks), *(-k for k in ks))


def _kernels(design, family):
    return tuple(la.dilation if family == "dilated" else la.kernel for la in design.layers)


def test_closed_form_feasibility_matches_enumeration():
    for family, rf, depth in SMALL:
        assert feasible(rf, depth, family) == ((family, rf, depth) in BRUTE), (family, rf, depth)
    # rf 1: only a 1x1 stack at stride 1, at any depth
    assert all(feasible(1, depth, "stride1") for depth in range(1, 30))
    assert not feasible(1, 1, "stride2") and not feasible(1, 1, "dilated")


def test_most_balanced_split_and_every_split_match_enumeration():
    for family, rf, depth in SMALL:
        splits = BRUTE.get((family, rf, depth))
        if splits is None:
            continue
        (d,) = solve(rf, depth, family=family)
        assert _kernels(d, family) == min(splits, key=_balance_key), (family, rf, depth)
        every = solve(rf, depth, family=family, exhaustive=True)
        assert [_kernels(e, family) for e in every] == sorted(splits, key=_balance_key)


def _run(args, code=None):
    """A fresh interpreter on this checkout; the timeout guards the old minutes-long search."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, *(["-c", code] if code else args)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


RF7 = "no stride1 design of depth {d} has rf 7; nearest feasible: rf {a} or {b} at depth {d}, or "
RF7 += "depth 5 or 6 for rf 7"


def test_deep_impossible_requests_answer_at_once_through_the_api():
    proc = _run(
        [],
        "from ganrf.design.designs import DesignError\n"
        "from ganrf.design.search import solve\n"
        "for rf, depth in [(7, 9), (7, 7), (7, 8), (28, 30)]:\n"
        "    try:\n"
        "        solve(rf, depth)\n"
        "    except DesignError as e:\n"
        "        print(e)\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        RF7.format(d=9, a=10, b=11),
        RF7.format(d=7, a=8, b=9),
        RF7.format(d=8, a=9, b=10),
        "no stride1 design of depth 30 has rf 28; nearest feasible: rf 1 at depth 30, "
        "or depth 26 or 27 for rf 28",
    ]


@pytest.mark.parametrize("depth, a, b", [(8, 9, 10), (9, 10, 11)])
def test_designs_cli_refuses_a_deep_request_at_once(depth, a, b):
    proc = _run(["-m", "ganrf", "designs", "--rf", "7", "--depth", str(depth)])
    assert proc.returncode == 2
    assert proc.stderr.strip() == "ganrf designs: error: " + RF7.format(d=depth, a=a, b=b)


def test_sweep_dry_run_refuses_a_deep_request_at_once():
    args = ["sweeps/mnist_rf.py", "--experiments", "same_rf", "--rfs", "7", "--depths", "9"]
    proc = _run([*args, "--dry-run"])
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "mnist_rf.py: error: experiment 'same_rf', rf 7, depth 9: " + RF7.format(d=9, a=10, b=11)
    )


@pytest.mark.parametrize(
    "first, second", [("search", "designs"), ("designs", "search")], ids=["search", "designs"]
)
def test_design_modules_import_in_either_order(first, second):
    proc = _run(
        [],
        f"import ganrf.design.{first}, ganrf.design.{second}\n"
        "from ganrf.design.search import solve\n"
        "print(solve(7, 3)[0].rf)\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "7"


# --------------------------------------------------------------------------------------------
# One norm rule, one complete description, no dead code
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm, module", [("batch", "BatchNorm2d"), ("instance", "InstanceNorm2d")])
def test_design_and_traced_module_share_the_norm_rule(norm, module):
    (d,) = solve(7, 2, head="patch", norm=norm, base_channels=4, dropout=0.3)
    traced = receptive_field(build_discriminator(d), (1, 28, 28))
    where = f"features.4 ({module})"  # conv, LeakyReLU, Dropout, conv, norm
    assert d.report.decision_reason == norm_reason(norm)
    assert traced.decision_reason == norm_reason(norm, where)
    assert d.report.decision_rf == traced.decision_rf == (28, 28)
    assert d.report.mixes_batch == traced.mixes_batch == (norm == "batch")
    assert [f"{where}: {n}" for n in d.report.notes] == list(traced.notes)
    assert len(traced.notes) == (norm == "batch")


def test_to_dict_is_the_whole_design():
    d = notes_initial()
    info = d.to_dict()
    # params by hand: 1*64*5*5 + 64, 64*128*5*5 + 128, dense 128*7*7 + 1
    params = (25 * 64 + 64) + (64 * 128 * 25 + 128) + (128 * 7 * 7 + 1)
    assert info == {
        "layers": "conv5s2,conv5s2",
        "channels": "64,128",
        "head": "image",
        "norm": "none",
        "dropout": 0.3,
        "image_size": 28,
        "in_channels": 1,
        "depth": 2,
        "rf": 13,
        "decision_rf": 28,
        "decision_reason": "dense layer over the flattened map",
        "mixes_batch": False,
        "effective_stride": 4,
        "output_grid": 1,
        "params": params,
        "table": d.report.table(),
    }
    assert params == 212_865
    assert json.loads(json.dumps(info)) == info
    assert "1  conv5s2" in info["table"] and "2  conv5s2" in info["table"]
    back = DiscriminatorDesign.from_spec(
        info["layers"], channels=info["channels"], dropout=info["dropout"]
    )
    assert back == d
    assert DiscriminatorDesign.from_value(json.loads(json.dumps(d.to_value()))) == d


def test_dead_helpers_are_gone():
    assert not hasattr(DiscriminatorDesign, "with_channels")
    assert not hasattr(RFReport, "depth")


def test_design_layers_named_by_what_they_are():
    d = DiscriminatorDesign.from_spec("conv5s2,conv3d2,conv4")
    assert [r.layer for r in d.report.layers] == ["conv5s2", "conv3d2", "conv4"]
    assert [la.token for la in d.layers] == ["conv5s2", "conv3d2", "conv4"]


def test_discriminator_dropout_has_one_default_and_the_notes_first_design_keeps_its_own():
    """0 everywhere a design is made without asking (every sweep ran so; DCGAN and SNGAN
    discriminators have none), ganrf train included; the notes' first discriminator had 0.3."""
    from ganrf.config import TrainConfig
    from ganrf.design.designs import DROPOUT
    from ganrf.sweep.experiments import Space
    from ganrf.tools.train import add_parser, resolve

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    train_args = parser.parse_args(["train", "--layers", "conv5"])
    assert DROPOUT == 0.0
    assert TrainConfig().d.dropout == resolve(train_args).d.dropout == 0.0
    assert TrainConfig().design().dropout == 0.0
    assert DiscriminatorDesign.from_spec("conv5").dropout == 0.0
    assert solve(5, 1)[0].dropout == onelayer(5).dropout == Space().dropout == 0.0
    assert notes_initial().dropout == 0.3
