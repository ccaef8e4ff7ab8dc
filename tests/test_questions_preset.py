"""The questions preset: the notes' four questions and the positive control, affordable on a
laptop by design (narrow stride-1 stacks, capacity matched inside the rf-equivalent question),
at the schedule the pilot fixed."""

import importlib.util
from collections import defaultdict
from pathlib import Path

from ganrf.design.designs import param_count
from ganrf.sweep.experiments import build_grid

ROOT = Path(__file__).resolve().parents[1]


def _presets():
    spec = importlib.util.spec_from_file_location("mnist_rf", ROOT / "sweeps" / "mnist_rf.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_question_is_a_trend_or_contrast_over_three_seeds_with_the_control():
    mod = _presets()
    preset = mod.PRESETS["questions"]
    grid = build_grid(preset.space)
    by_exp = defaultdict(set)
    seeds = defaultdict(set)
    for p in grid:
        for e in p.experiments:
            by_exp[e].add(p.design)
            seeds[(e, p.design)].add(p.seed)
    assert {e: len(d) for e, d in by_exp.items()} == {
        "onelayer": 5,  # rf 1, 3, 5, 9, 13
        "same_rf": 3,  # rf 13 at depth 1, 2, 3
        "same_depth": 3,  # depth 3 at rf 4, 7, 13
        "heads": 4,  # rf 5 and 13, image and patch head
        "control": 1,
    }
    assert all(len(s) == 3 for s in seeds.values())
    assert seeds[("control", next(iter(by_exp["control"])))] == {1000, 1001, 1002}
    assert sorted(d.rf for d in by_exp["onelayer"]) == [1, 3, 5, 9, 13]
    assert sorted(d.depth for d in by_exp["same_rf"]) == [1, 2, 3]
    assert {d.rf for d in by_exp["same_rf"]} == {13}
    assert sorted(d.rf for d in by_exp["same_depth"]) == [4, 7, 13]
    # capacity matched inside the rf-equivalent question: every D within 10% of the median
    counts = sorted(param_count(d) for d in by_exp["same_rf"])
    assert counts == [25759, 25793, 25905]
    assert max(abs(c - counts[1]) / counts[1] for c in counts) <= 0.10
    # stacks deeper than one layer are 16 channels wide; one-layer Ds are the notes' 64
    assert {la.channels for d in by_exp["same_depth"] for la in d.layers} == {16}
    assert {d.layers[0].channels for d in by_exp["onelayer"]} == {64}
    assert len(grid) == 39  # same_rf's depth-3 stack is same_depth's rf 13, trained once


def test_the_schedule_is_the_one_the_pilot_fixed():
    mod = _presets()
    base = mod.PRESETS["questions"].base
    assert base["schedule.steps"] == mod.QUESTIONS_STEPS == 6000
    laptop = mod.PRESETS["laptop"].base
    for key in ("g.width", "schedule.batch_size", "optim.lr_g", "optim.lr_d", "optim.beta1"):
        assert base[key] == laptop[key]  # only the number of steps was chosen
    assert "control" in mod.PRESETS["laptop"].space.experiments
