"""One trial value from the grid point to the trial folder the analysis reads."""

import json
import subprocess
import sys

import pytest

from ganrf import runs
from ganrf.config import ConfigError, TrainConfig
from ganrf.design.designs import DiscriminatorDesign
from ganrf.sweep.experiments import Space, build_grid
from ganrf.sweep.trial import Trial
from ganrf.training.loop import train

TINY = {
    "data.dataset": "synthetic",
    "data.synthetic_size": 64,
    "schedule.batch_size": 16,
    "schedule.steps": 4,
    "schedule.eval_every_steps": 2,
    "g.width": 0.0625,
    "d.width": 0.125,
    "eval.samples": 64,
    "eval.erf_images": 4,
    "device": "cpu",
}


def _trial(**space) -> Trial:
    (point,) = build_grid(Space(**space))
    return Trial.make(TINY, point, timeout_s=90.0)


def test_trial_round_trips_through_the_flat_dict_tune_carries():
    t = _trial(experiments=("twolayers",), rfs=(7,))
    flat = t.to_flat()
    assert json.loads(json.dumps(flat)) == flat  # JSON-safe: Tune stores it in params.json
    assert flat["d.layers"] == "conv4,conv4" and flat["seed"] == 0
    assert flat["meta.experiment"] == "twolayers" and flat["meta.timeout_s"] == 90.0
    assert flat["meta.name"] == "rf7-d2-conv4_conv4-image-s0"
    back = Trial.from_flat(flat)
    assert back == t
    assert back.design.rf == 7 and back.design.channels == (8, 8)  # 64 x d.width 0.125


def test_trial_shared_by_two_experiments_names_both():
    t = _trial(experiments=("onelayer", "heads"), rfs=(5,), depths=(1,), heads=("image",))
    assert t.experiments == ("onelayer", "heads")
    assert Trial.from_flat(t.to_flat()).experiments == ("onelayer", "heads")


def test_unknown_key_in_a_flat_trial_is_refused():
    flat = _trial(experiments=("onelayer",), rfs=(5,)).to_flat() | {"d.layerz": "conv3"}
    with pytest.raises(ConfigError, match="did you mean 'd.layers'"):
        Trial.from_flat(flat)


def test_design_is_parsed_once_per_trial(monkeypatch, tmp_path):
    """From the flat dict Tune hands the trainable to the last evaluation, the layer spec is
    parsed into a design once (it used to be parsed again at every use)."""
    flat = _trial(experiments=("onelayer",), rfs=(5,)).to_flat()
    calls = []
    original = DiscriminatorDesign.from_spec.__func__

    def counting(cls, *a, **kw):
        calls.append(a[0])
        return original(cls, *a, **kw)

    monkeypatch.setattr(DiscriminatorDesign, "from_spec", classmethod(counting))
    trial = Trial.from_flat(flat)
    out = train(trial.config, lambda m, c: None, out_dir=tmp_path)
    assert out["status"] == "finished" and out["progress/step"] == 4  # two evaluations ran
    assert calls == ["conv5"]


def test_trial_folder_files_are_what_the_analysis_reads(tmp_path):
    from analysis.load import load_experiment

    trial = _trial(experiments=("heads",), rfs=(5,), depths=(2,), heads=("patch",))
    folder = tmp_path / "exp" / trial.name
    out = train(trial.config, None, out_dir=folder)
    runs.write_trial_files(folder, meta=trial.meta)
    saved = json.loads((folder / runs.CONFIG_FILE).read_text())
    assert TrainConfig.from_dict(saved) == trial.config
    d = json.loads((folder / runs.DESIGN_FILE).read_text())["discriminator"]
    assert (d["rf"], d["decision_rf"], d["depth"], d["head"]) == (5, 5, 2, "patch")
    frame = load_experiment(tmp_path / "exp")
    (row,) = frame.to_dict("records")
    assert (row["rf"], row["decision_rf"], row["depth"], row["head"]) == (5, 5, 2, "patch")
    assert row["params_d"] == trial.design.to_dict()["params"]
    assert row["experiment"] == "heads" and row["seed"] == 0 and row["loss"] == "ns"
    assert out["status"] == "finished"


def test_torch_free_modules_import_no_torch():
    code = (
        "import sys, ganrf.sweep.trial, ganrf.runs, ganrf.metrics.spec, analysis.load; "
        "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_trial_names_are_unique_across_the_full_preset():
    """A name is a folder (a packed member's, inside its pack's): capacity-matched same_rf
    stacks share rf, depth, layers and head with other experiments' stacks, not channels."""
    from ganrf.sweep.experiments import EXPERIMENTS

    trials = [Trial.make({}, p) for p in build_grid(Space(experiments=EXPERIMENTS, seeds=3))]
    names = [t.name for t in trials]
    assert len(names) == len(set(names)) == 90
    (same_rf,) = build_grid(Space(experiments=("same_rf",), rfs=(7,), depths=(1, 2)))[:1]
    assert Trial.make({}, same_rf).name == "rf7-d1-conv7-image-c102-s0"
