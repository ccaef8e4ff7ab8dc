"""Bad input to every command line: one sentence on stderr naming what was wrong and what to do,
a non-zero exit status, and nothing left on disk (issue 22's list)."""

import importlib.util
import tarfile
from pathlib import Path

import pytest

from analysis.__main__ import main as analysis_main
from ganrf.cli import main as ganrf_main
from tests.test_data import fake_mnist

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = (  # what torchvision raises when every MNIST mirror fails (no network)
    "Error downloading train-images-idx3-ubyte.gz:\nTried https://ossci-datasets.s3.amazonaws"
    ".com/mnist/, got:\n<urlopen error [Errno -2] Name or service not known>\n"
)


def sweep_main(argv):
    spec = importlib.util.spec_from_file_location("mnist_rf_script", ROOT / "sweeps/mnist_rf.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv, prog="mnist_rf.py", doc="", dataset="mnist", presets=mod.PRESETS)


def experiment(tmp):
    with tarfile.open(ROOT / "tests/data/premove_sweep.tar.gz") as tar:
        tar.extractall(tmp / "store", filter="data")
    return str(tmp / "store" / "premove")


CASES = {
    "rf-two-heads": (
        ganrf_main,
        lambda t: ["rf", "conv3,patch", "--head", "image"],
        "ganrf rf: error: 'conv3,patch' ends in a patch head but --head asks for image; give the "
        "head once",
    ),
    "rf-empty-layer": (  # the sweep's --rfs 1,,5 is refused; this was read as conv5s2,conv5
        ganrf_main,
        lambda t: ["rf", "conv5s2,,conv5"],
        "ganrf rf: error: layer 2 of 'conv5s2,,conv5' is empty; remove the extra comma",
    ),
    "cluster-check-binary": (
        ganrf_main,
        lambda t: ["cluster-check", str(t / "bin.yaml")],
        "ganrf cluster-check: error: {t}/bin.yaml is not a text file (not UTF-8); give the "
        "cluster YAML, e.g. cluster/gpu.yaml",
    ),
    "train-offline": (
        ganrf_main,
        lambda t: ["train", "--data-root", str(t / "nodata"), "--out", str(t / "D")],
        "ganrf train: error: MNIST is not in {t}/nodata/MNIST/raw and could not be downloaded "
        "(no network: Name or service not known), so nothing was written there; on a machine "
        "without network, copy the four *-ubyte files into {t}/nodata/MNIST/raw",
    ),
    "train-truncated-mnist": (
        ganrf_main,
        lambda t: ["train", "--data-root", str(t / "short"), "--out", str(t / "D")],
        "ganrf train: error: MNIST training files in {t}/short/MNIST/raw are truncated or "
        "corrupt (torchvision cannot parse them); delete them and download again",
    ),
    "train-rf-larger-than-the-input": (
        ganrf_main,
        lambda t: ["train", "--layers", "conv999", "--dataset", "synthetic", "--out", str(t / "D")],
        "ganrf train: error: rf 999 of conv999 is larger than the 28px input; the largest useful "
        "rf is 28 (use smaller kernels or fewer layers, or a larger data.image_size)",
    ),
    "train-residual-rf-larger-than-the-input": (  # one rule for both families
        ganrf_main,
        lambda t: ["train", "--layers", "res3s2,res3s2,res3,res3", "--dry-run"],
        "ganrf train: error: rf 48 of res3s2,res3s2,res3,res3 is larger than the 28px input; the "
        "largest useful rf is 28 (use smaller kernels or fewer layers, or a larger data.image_size)",
    ),
    "train-rf-larger-than-the-input-dry-run": (
        ganrf_main,
        lambda t: ["train", "--layers", "conv999", "--dry-run"],
        "ganrf train: error: rf 999 of conv999 is larger than the 28px input; the largest useful "
        "rf is 28 (use smaller kernels or fewer layers, or a larger data.image_size)",
    ),
    "train-resume-without-checkpoint": (
        ganrf_main,
        lambda t: [
            "train",
            "--resume",
            str(t / "nockpt"),
            "--dataset",
            "synthetic",
            "--out",
            str(t / "D"),
        ],  # fmt: skip
        "ganrf train: error: no state.pt in {t}/nockpt; pass a checkpoint directory (the trial "
        "folder's checkpoint/)",
    ),
    "train-bad-choice": (
        ganrf_main,
        lambda t: ["train", "--loss", "nope", "--out", str(t / "D")],
        "ganrf train: error: argument --loss: invalid choice: 'nope' (choose from 'ns', "
        "'wgan-gp', 'hinge'); see ganrf train --help",
    ),
    "train-config-missing": (
        ganrf_main,
        lambda t: ["train", "--config", str(t / "nope.json"), "--out", str(t / "D")],
        "ganrf train: error: cannot read --config {t}/nope.json (No such file or directory); "
        "pass a config.json of flat keys (a trial folder's, or `ganrf train --dry-run`'s output)",
    ),
    "train-config-not-json": (
        ganrf_main,
        lambda t: ["train", "--config", str(t / "bin.yaml"), "--out", str(t / "D")],
        "ganrf train: error: --config {t}/bin.yaml is not JSON ('utf-8' codec can't decode byte "
        "0x80 in position 128: invalid start byte); pass a config.json of flat keys (a trial "
        "folder's, or `ganrf train --dry-run`'s output)",
    ),
    "train-steps-zero": (  # 0 meant "train the default epochs" in the config: never silently
        ganrf_main,
        lambda t: ["train", "--steps", "0", "--dataset", "synthetic", "--out", str(t / "D")],
        "ganrf train: error: --steps must be at least 1, got 0",
    ),
    "train-device-banana": (
        ganrf_main,
        lambda t: ["train", "--device", "banana", "--dataset", "synthetic", "--out", str(t / "D")],
        "ganrf train: error: device must be auto, cpu, cuda, cuda:N or mps, not 'banana'",
    ),
    "train-out-in-proc": (
        ganrf_main,
        lambda t: ["train", "--dataset", "synthetic", "--steps", "1", "--out", "/proc/x"],
        "ganrf train: error: cannot write --out /proc/x (No such file or directory); choose "
        "another folder",
    ),
    "train-out-existing-but-unwritable": (  # mkdir passed; the first write failed mid-run
        ganrf_main,
        lambda t: ["train", "--dataset", "synthetic", "--steps", "1", "--out", "/proc"],
        "ganrf train: error: cannot write --out /proc (No such file or directory); choose "
        "another folder",
    ),
    "sweep-bad-choice": (
        sweep_main,
        lambda t: ["--loss", "nope", "--storage-path", str(t / "D")],
        "mnist_rf.py: error: argument --loss: invalid choice: 'nope' (choose from 'ns', "
        "'wgan-gp', 'hinge'); see mnist_rf.py --help",
    ),
    "sweep-empty-name": (
        sweep_main,
        lambda t: ["--smoke-test", "--name", "", "--storage-path", str(t / "D")],
        "mnist_rf.py: error: argument --name: '' is not an experiment name: use letters, digits, "
        "'.', '_' and '-' (no '/', not starting with '.'); see mnist_rf.py --help",
    ),
    "sweep-address-nothing-listens": (  # Ray itself retried for minutes (290 s tried)
        sweep_main,
        lambda t: ["--smoke-test", "--address", "127.0.0.1:1", "--storage-path", str(t / "D")],
        "mnist_rf.py: error: cannot join a Ray cluster at 127.0.0.1:1: nothing listens at "
        "127.0.0.1:1 (Connection refused); start one first (`ray get-auth-token --generate`, "
        "then `RAY_AUTH_MODE=token ray start --head`), or drop --address to run on this machine "
        "alone",
    ),
    "page-into-proc": (
        analysis_main,
        lambda t: [experiment(t), "-o", "/proc/x.html"],
        "python -m analysis: error: cannot write /proc/x.html (No such file or directory); "
        "choose another path",
    ),
    "page-into-a-file": (
        analysis_main,
        lambda t: [experiment(t), "-o", str(t / "bin.yaml" / "x.html")],
        "python -m analysis: error: cannot write {t}/bin.yaml/x.html: {t}/bin.yaml is a file, "
        "not a folder; choose another path",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_sentence_and_leaves_nothing(case, tmp_path, monkeypatch, capsys):
    import torchvision

    def offline(self):
        raise RuntimeError(OFFLINE)

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)))
    fake_mnist(tmp_path / "short", truncate=True)
    main, argv, message = CASES[case]
    argv = argv(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own exit
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert err == message.format(t=tmp_path) + "\n"
    assert not (tmp_path / "D").exists()  # no trial folder, no storage folder
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nor anything else


# An object store nothing answers at (a local port no one listens on: no network needed).
UNREACHABLE = "s3://bucket/runs?endpoint_override=127.0.0.1:1&region=us-east-1&scheme=http"


@pytest.mark.parametrize(
    "main,argv,prog",
    [
        (ganrf_main, ["ls", UNREACHABLE], "ganrf ls"),
        (analysis_main, [UNREACHABLE, "-o", "page.html"], "python -m analysis"),
    ],
)
def test_an_unreachable_store_is_one_sentence(main, argv, prog, tmp_path, monkeypatch, capsys):
    # pyarrow's own words were a traceback ending in an AWS error of many lines
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credential lookups either
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: cannot reach {UNREACHABLE} (")
    assert "Could not connect to server" in err
    assert err.endswith(
        "); check the address, the network and the credentials, or copy the folder here and "
        "give its local path\n"
    )
    assert err.count("\n") == 1 and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "spec,rf", [("conv13,conv13,conv13", 37), ("res3s2,res3s2,res3,res3,dense", 48)]
)
def test_ganrf_rf_reports_a_stack_beyond_the_input_in_either_family(spec, rf, capsys):
    # plain refused rf 37 while residual printed rf 48 silently: one rule, a note for both
    assert ganrf_main(["rf", spec, "--input", "28"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (
        f"note: rf {rf} is larger than the 28px input: each unit of the last map sees the whole "
        "image and padding beyond it (ganrf designs, ganrf train and the sweeps refuse such a D; "
        "the largest useful rf is 28)"
    )
    assert ganrf_main(["rf", spec, "--input", str(rf)]) == 0
    assert "is larger than" not in capsys.readouterr().out
