"""What a newcomer reads in --help: every option says what it does and its default, no raw
markup (issue 22)."""

import importlib.util
from pathlib import Path

import pytest

from ganrf.cli import main as ganrf_main

ROOT = Path(__file__).resolve().parents[1]


def help_text(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width


def sweep(script):
    spec = importlib.util.spec_from_file_location(script, ROOT / "sweeps" / f"{script}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return lambda argv: mod.main(
        argv, prog=f"{script}.py", doc=mod.__doc__, dataset="x", presets=mod.PRESETS
    )


@pytest.mark.parametrize(
    "command", [[], ["rf"], ["designs"], ["cluster-check"], ["ls"], ["train"], ["score"]]
)
def test_ganrf_help_has_no_raw_markup(command, capsys):
    assert "``" not in help_text(ganrf_main, command, capsys)


def test_ganrf_designs_help_describes_it_and_every_option(capsys):
    text = help_text(ganrf_main, ["designs"], capsys)
    for said in (
        "List the discriminator layer stacks of a given depth whose theoretical rf is exactly "
        "--rf on an --input x --input image",
        "--rf RF the target rf, in input pixels",
        "--depth DEPTH conv layers in the stack (resnet: blocks)",
        "--family {stride1,stride2,dilated,resnet} stride1: stride-1 stacks (default); stride2: "
        "the notes' downsampling; dilated; resnet: SNGAN-style residual blocks",
        "--input INPUT input height = width (default 28)",
        "--channels CHANNELS input channels (default 1)",
        "--head {image,patch} image: dense over the flattened map (default); patch: one "
        "decision per location",
        "example: ganrf designs --rf 13 --depth 2 --family stride2",
    ):
        assert said in text


def test_sweep_help_gives_the_defaults_and_where_things_are(capsys):
    text = help_text(sweep("mnist_rf"), [], capsys)
    for said in (
        "--experiments EXPERIMENTS comma-separated, from onelayer, twolayers, same_depth, "
        "same_rf, heads, control (default: smoke onelayer; laptop onelayer,control; questions "
        "onelayer,same_rf,same_depth,heads,control; full all)",
        "--rfs RFS target rfs, e.g. 1,3,5,7 (default: smoke 1,5; laptop 1,3,5,13; questions "
        "each experiment's own; full each experiment's own; a preset's rfs are for its own "
        "experiments, others that --experiments adds bring theirs)",
        "--seeds SEEDS seeds per grid point (default: smoke 1; laptop 2; questions 3; full 3)",
        "--epochs EPOCHS train every trial for this many passes over the data instead of the "
        "preset's schedule (smoke 4 steps; laptop 3,000 steps; questions 6,000 steps; full 50 "
        "epochs)",
        "--data-root DIR dataset folder, default ./data: DIR/MNIST/raw/ with the four *-ubyte "
        "(or *-ubyte.gz) files, downloaded there when missing",
        "the keys, with their defaults, are listed by `ganrf train --dry-run` and explained in "
        "ganrf/config.py",
        "While it runs, a sweep prints one line per trial change (started, reported, finished, "
        "errored) and Tune's full table at the end; `kill -USR1 PID` (its first line gives the "
        "PID) prints the table at once.",
    ):
        assert said in text
    assert "DIR/celeba/img_align_celeba/*.jpg" in help_text(sweep("celeba_rf"), [], capsys)
    assert "DIR/train/<class>/<image>" in help_text(sweep("imagenet_rf"), [], capsys)
    photo = help_text(sweep("photo_rf"), [], capsys)
    assert "--data-root DIR dataset folder, default ./data: not read: the photographs ship" in photo
    assert "(default: smoke 4,25; laptop each experiment's own" in photo
