"""One trial value from the grid point to the trial folder the analysis reads."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from ganrf import runs
from ganrf.config import ConfigError, TrainConfig
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


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """Every layer spec string parsed from now on, of either family: the grammar they share,
    ``ganrf.design.spec.split_spec``, counted wherever it is bound (``parse_specs``, so
    ``DiscriminatorDesign.from_spec`` and ``receptive_field``, and the residual parser,
    ``ResidualDesign.from_spec``, all read text through it)."""
    import sys

    from ganrf.design import spec

    calls: list[str] = []
    original = spec.split_spec

    def counting(text, *a, **kw):
        calls.append(text)
        return original(text, *a, **kw)

    bound = [m for m in list(sys.modules.values()) if getattr(m, "split_spec", None) is original]
    assert {m.__name__ for m in bound} >= {"ganrf.design.rf", "ganrf.design.resnet"}
    for module in bound:
        monkeypatch.setattr(module, "split_spec", counting)
    return calls


def _residual_trial() -> Trial:
    from ganrf.design.resnet import ResBlock, ResidualDesign
    from ganrf.sweep.experiments import GridPoint

    design = ResidualDesign((ResBlock(3, True), ResBlock(3)), image_size=28, in_channels=1)
    return Trial.make(TINY, GridPoint(design, 0, ("heads",)))


def test_a_residual_trial_is_carried_without_parsing_and_an_old_one_is_parsed_once(parses):
    trial = _residual_trial()
    flat = json.loads(json.dumps(trial.to_flat()))  # as params.json holds it
    assert flat["d.layers"] == "res3s2,res3" and flat[runs.DESIGN_KEY]["family"] == "resnet"
    back = Trial.from_flat(flat)
    assert back == trial and back.design == trial.design and back.design.rf == 14
    assert parses == []
    flat.pop(runs.DESIGN_KEY)  # from before the design was carried
    assert Trial.from_flat(flat).design == trial.design
    assert parses == ["res3s2,res3"]


def test_the_analysis_reads_a_trial_that_never_started_from_its_carried_design(parses, tmp_path):
    """A trial with no design.json yet (params.json only) gets its design columns from the
    design value params.json carries, not from parsing its d.layers."""
    from analysis.load import load_experiment

    trial = _trial(experiments=("onelayer",), rfs=(5,))
    folder = tmp_path / "exp" / "t0"
    folder.mkdir(parents=True)
    (folder / runs.PARAMS_FILE).write_text(json.dumps({runs.TRIAL_KEY: trial.to_flat()}))
    (row,) = load_experiment(tmp_path / "exp").to_dict("records")
    assert (row["rf"], row["layers"], row["channels"], row["params_d"]) == (
        5,
        "conv5",
        "8",
        trial.design.to_dict()["params"],
    )
    assert parses == []


def test_ganrf_rf_parses_its_spec_once(parses, capsys):
    from ganrf.cli import main

    assert main(["rf", "conv5s2,conv5s2,patch"]) == 0
    assert "decision rf 13 (one decision per location)" in capsys.readouterr().out
    assert parses == ["conv5s2,conv5s2,patch"]


def _smoke_sweep(argv: list[str]) -> tuple[dict, list[Trial]]:
    """The smoke preset of sweeps/mnist_rf.py through the sweep's own resolve."""
    import argparse

    from ganrf.sweep import cli
    from ganrf.sweep.presets import Preset

    presets = {"smoke": Preset(TINY, Space(experiments=("onelayer",), rfs=(1, 5)), "tiny")}
    args = cli.build_parser("t", "", presets, "smoke").parse_args(argv)
    assert isinstance(args, argparse.Namespace)
    args.preset = args.preset or "smoke"
    trials, _ = cli.resolve(args, presets, "synthetic")
    return presets, trials


def test_a_new_trial_parses_no_rf_spec_from_command_line_to_design_json(parses, tmp_path, capsys):
    """The rf chosen on the command line is solved into a design once and carried as that
    value: the dry-run, the driver (grid, packs, Tune's names) and the worker (the trial
    rebuilt from Tune's params.json, trained, design.json written) parse no spec string."""
    from ganrf.sweep import cli
    from ganrf.sweep.raytune.tune import _trial_name
    from ganrf.sweep.trial import make_packs
    from ganrf.training.loop import train_pack

    presets, _ = _smoke_sweep([])
    # the dry-run, as `sweeps/mnist_rf.py --dry-run --rfs 5,7 --pack 2` runs it
    argv = ["--dry-run", "--rfs", "5,7", "--seeds", "2", "--pack", "2"]
    assert cli.main(argv, prog="t", doc="", dataset="x", presets=presets, default="smoke") == 0
    assert "rf7-d1-conv7-image-s0-1" in capsys.readouterr().out
    assert parses == []
    # the driver: the trials, their packs, what Tune stores, and the names Tune gives them
    _, trials = _smoke_sweep(["--rfs", "5,7", "--seeds", "2"])
    packs = make_packs(trials, 2)
    params = [json.loads(json.dumps([t.to_flat() for t in p])) for p in packs]  # params.json
    names = [_trial_name(SimpleNamespace(config={runs.TRIAL_KEY: p}, trial_id="x")) for p in params]
    assert names == ["rf5-d1-conv5-image-s0-1-x", "rf7-d1-conv7-image-s0-1-x"]
    assert parses == []
    # the worker: rebuilt from params.json, trained, design.json written
    members = [Trial.from_flat(flat) for flat in params[1]]
    outs = [tmp_path / m.name for m in members]
    finals = train_pack([m.config for m in members], lambda m, c: None, out_dirs=outs)
    assert [f["status"] for f in finals] == ["finished", "finished"]
    d = json.loads((outs[1] / runs.DESIGN_FILE).read_text())["discriminator"]
    assert (d["layers"], d["channels"], d["rf"], d["dropout"]) == ("conv7", "8", 7, 0.0)
    assert parses == []


def test_a_trial_from_before_the_design_was_carried_is_parsed_once(parses, tmp_path):
    """A sweep started before the design was carried (its params.json holds flat keys only)
    still resumes: its d.layers is parsed once, from the flat dict to the last evaluation."""
    flat = _trial(experiments=("onelayer",), rfs=(5,)).to_flat()
    flat.pop(runs.DESIGN_KEY)
    trial = Trial.from_flat(flat)
    out = train(trial.config, lambda m, c: None, out_dir=tmp_path)
    assert out["status"] == "finished" and out["progress/step"] == 4  # two evaluations ran
    assert parses == ["conv5"]
    d = json.loads((tmp_path / runs.DESIGN_FILE).read_text())["discriminator"]
    assert (d["layers"], d["channels"], d["rf"]) == ("conv5", "8", 5)


def test_the_carried_design_is_the_one_the_keys_describe():
    t = _trial(experiments=("same_rf",), rfs=(7,), depths=(2,))
    flat = t.to_flat()
    assert flat[runs.DESIGN_KEY] == {
        "layers": [[4, 1, 1, 64], [4, 1, 1, 64]],  # [kernel, stride, dilation, channels]
        "head": "image",
        "norm": "none",
        "dropout": 0.0,
        "image_size": 28,
        "in_channels": 1,
    }
    assert (flat["d.layers"], flat["d.channels"]) == ("conv4,conv4", "64,64")
    assert Trial.from_flat(flat).design == TrainConfig.from_dict(runs.split_meta(flat)[0]).design()
    assert t.design.channels == (8, 8)  # d.width 0.125 applied to the carried design


def test_a_config_holds_the_design_its_keys_describe_made_once(parses):
    """The default config's design is the one its default keys name (built without parsing
    them); a config made from keys parses d.layers once and carries that value after."""
    from ganrf.config import DESIGN_FIELD
    from ganrf.design.resnet import design_from_spec

    default = TrainConfig()
    assert parses == []
    assert default.discriminator == design_from_spec(default.d.layers)
    assert DESIGN_FIELD not in {k.split(".")[0] for k in default.to_dict()}
    parses.clear()
    cfg = TrainConfig.from_dict({"d.layers": "conv3,conv3", "d.width": 0.5})
    assert cfg.design() is not cfg.discriminator and cfg.design().channels == (32, 32)
    assert [cfg.design().rf, cfg.validate(), cfg.to_dict()["d.layers"]] == [5, None, "conv3,conv3"]
    assert parses == ["conv3,conv3"]


def test_a_design_for_another_input_is_refused():
    (point,) = build_grid(Space(experiments=("onelayer",), rfs=(5,)))
    with pytest.raises(ConfigError, match="design is for 28px images of 1 channel"):
        Trial.make({**TINY, "data.channels": 3}, point)


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
    assert len(names) == len(set(names)) == 93  # 90 and the control's 3
    (same_rf,) = build_grid(Space(experiments=("same_rf",), rfs=(7,), depths=(1, 2)))[:1]
    assert Trial.make({}, same_rf).name == "rf7-d1-conv7-image-c102-s0"


def test_a_presets_rfs_stay_with_its_experiments_when_others_are_added():
    """The laptop preset's rfs (onelayer at 1, 3, 5, 13) applied to every experiment made
    ``--experiments onelayer,same_depth`` ask same_depth for rf 3 at depth 3, which no stack has:
    the first run of the whole protocol stopped there. The preset's rfs stay onelayer's; the
    added experiment brings its own (DEFAULTS: same_depth at rf 4, 5, 7, 9, 13, depth 3)."""
    import argparse

    from ganrf.sweep import cli
    from ganrf.sweep.presets import Preset

    presets = {"laptop": Preset(TINY, Space(experiments=("onelayer",), rfs=(1, 3, 5, 13)), "l")}

    def rfs(argv):
        args = cli.build_parser("t", "", presets, "laptop").parse_args(argv)
        assert isinstance(args, argparse.Namespace)
        args.preset = "laptop"
        trials, _ = cli.resolve(args, presets, "synthetic")
        by: dict[str, set] = {}
        for t in trials:
            for e in t.experiments:
                by.setdefault(e, set()).add((t.design.rf, t.design.depth))
        return by

    got = rfs(["--experiments", "onelayer,same_depth"])
    assert got["onelayer"] == {(1, 1), (3, 1), (5, 1), (13, 1)}
    assert got["same_depth"] == {(4, 3), (5, 3), (7, 3), (9, 3), (13, 3)}
    assert rfs([]) == {"onelayer": {(1, 1), (3, 1), (5, 1), (13, 1)}}  # the preset as it was
    # --rfs given: every experiment's, and an rf a depth cannot reach is still refused
    assert rfs(["--experiments", "onelayer,same_depth", "--rfs", "5"]) == {
        "onelayer": {(5, 1)},
        "same_depth": {(5, 3)},
    }
