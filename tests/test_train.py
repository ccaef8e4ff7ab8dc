"""The training loop: every loss x head x norm, exact resume, divergence, seeding, checkpoints."""

import json
import shutil

import pytest
import torch

from ganrf.config import ConfigError, TrainConfig
from ganrf.training.checkpoint import CheckpointError, load_checkpoint
from ganrf.training.loop import train

TINY = {
    "data.dataset": "synthetic",
    "data.synthetic_size": 128,
    "schedule.batch_size": 16,
    "schedule.steps": 3,
    "g.width": 0.0625,
    "d.width": 0.125,
    "eval.metrics": False,
    "device": "cpu",
}


@pytest.mark.parametrize("loss", ["ns", "wgan-gp", "hinge"])
@pytest.mark.parametrize("head", ["image", "patch"])
@pytest.mark.parametrize("norm", ["none", "batch", "instance", "spectral"])
def test_every_loss_head_norm_trains_and_reports_finite(loss, head, norm, tmp_path):
    reports = []
    out = train(
        TINY | {"loss.kind": loss, "d.head": head, "d.norm": norm, "d.layers": "conv3,conv3"},
        lambda m, c: reports.append((m, c)),
        out_dir=tmp_path,
    )
    assert out["status"] == "finished" and out["progress/step"] == 3
    assert len(reports) == 1 and reports[0][1] is not None
    for key in ("loss/d", "loss/g", "time/epoch_s"):
        assert torch.isfinite(torch.tensor(out[key])), key
    # rf lives once, in the trial folder's design.json, not in every report
    assert not any(k.startswith("rf/") for k in out)
    d = json.loads((tmp_path / "design.json").read_text())["discriminator"]
    assert d["rf"] == 5
    assert d["decision_rf"] == (5 if head == "patch" and norm in ("none", "spectral") else 28)


def test_reports_every_period_with_a_real_checkpoint():
    seen = []

    def report(metrics, ckpt):
        state = load_checkpoint(ckpt)
        seen.append((metrics["progress/step"], state["step"], metrics["status"]))

    train(TINY | {"schedule.steps": 6, "schedule.eval_every_steps": 2}, report)
    assert seen == [(2, 2, "running"), (4, 4, "running"), (6, 6, "finished")]


def test_epochs_and_eval_every_epoch():
    steps = []
    out = train(TINY | {"schedule.steps": 0, "schedule.epochs": 2}, lambda m, c: steps.append(m))
    # 128 images / 16 = 8 steps per epoch
    assert [m["progress/step"] for m in steps] == [8, 16]
    assert out["progress/epoch"] == 2.0


def _states(tmp_path, name):
    kept = {}

    def report(metrics, ckpt):
        dest = tmp_path / f"{name}-{metrics['progress/step']}"
        shutil.copytree(ckpt, dest)
        kept[metrics["progress/step"]] = dest

    return kept, report


@pytest.mark.parametrize(
    "extra", [{}, {"loss.kind": "wgan-gp", "optim.d_steps": 2, "d.dropout": 0.3}]
)
def test_resume_continues_exactly(tmp_path, extra):
    cfg = TINY | {"schedule.steps": 6, "schedule.eval_every_steps": 3} | extra
    kept, report = _states(tmp_path, "a")
    train(cfg, report)
    straight = load_checkpoint(kept[6])
    resumed_kept, report2 = _states(tmp_path, "b")
    train(cfg, report2, resume_from=kept[3])
    resumed = load_checkpoint(resumed_kept[6])
    assert resumed["step"] == 6
    a, b = straight["pack"], resumed["pack"]
    for part, value in [("g", a["g"]), ("d", a["d"][0])]:
        other = b["g"] if part == "g" else b["d"][0]
        for key, tensor in value.items():
            assert torch.equal(tensor, other[key]), (part, key)


def test_resume_refuses_a_different_run(tmp_path):
    kept, report = _states(tmp_path, "a")
    train(TINY, report)
    with pytest.raises(CheckpointError, match="different run.*d.layers"):
        train(TINY | {"d.layers": "conv3"}, resume_from=kept[3])


def test_divergence_stops_without_checkpointing_poison():
    reports = []
    out = train(
        TINY
        | {
            "optim.lr_d": 1e10,  # hinge at this lr: non-finite losses within two steps
            "optim.lr_g": 1e10,
            "loss.kind": "hinge",
            "schedule.steps": 20,
            "schedule.eval_every_steps": 10,
        },
        lambda m, c: reports.append((m["status"], c)),
    )
    assert out["status"] == "diverged"
    assert 0 <= out["diverged_step"] < 10
    assert out["progress/step"] == out["diverged_step"] + 1  # stopped at once on CPU
    assert reports == [("diverged", None)]


def test_non_finite_weights_at_evaluation_count_as_divergence(monkeypatch):
    from ganrf.training.pack import Pack

    monkeypatch.setattr(Pack, "weights_finite", lambda self: torch.zeros(self.k, dtype=torch.bool))
    reports = []
    out = train(TINY, lambda m, c: reports.append((m["status"], c)))
    assert out["status"] == "diverged" and out["diverged_step"] == 2
    assert reports == [("diverged", None)]


def test_same_seed_same_first_losses_other_seed_differs():
    one = TINY | {"schedule.steps": 1}
    a, b = train(one), train(one)
    assert (a["loss/d"], a["loss/g"]) == (b["loss/d"], b["loss/g"])
    c = train(one | {"seed": 1})
    assert (c["loss/d"], c["loss/g"]) != (a["loss/d"], a["loss/g"])


def test_trial_folder_gets_config_and_sample_grid(tmp_path):
    out = train(TINY | {"eval.grid": 16}, out_dir=tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["d.layers"] == "conv5s2,conv5s2"
    grid = tmp_path / out["artifact/samples"]
    assert grid.exists() and grid.stat().st_size > 100


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": 1, "x": Evil()}, tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match="not a plain-tensor checkpoint"):
        load_checkpoint(tmp_path)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    kept, report = _states(tmp_path, "a")
    train(TINY, report)
    f = kept[3] / "state.pt"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_checkpoint(kept[3])


@pytest.mark.parametrize(
    "override, match",
    [
        ({"d.lyers": "conv3"}, "did you mean 'd.layers'"),
        ({"loss.kind": "lsgan"}, "loss.kind must be one of ns, wgan-gp, hinge"),
        ({"schedule.batch_size": 0}, "batch_size must be at least 1"),
        ({"schedule.epochs": 0, "schedule.steps": 0}, "schedule.epochs must be at least 1"),
        ({"schedule.steps": "many"}, "schedule.steps must be a whole number"),
        ({"data.dataset": "cifar"}, "data.dataset must be one of"),
        ({"data.image_size": 64}, "g.kind 'mnist' makes 28x28"),
    ],
)
def test_bad_config_one_clear_error(override, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict(TINY | override)


def test_config_round_trip_and_coercion():
    cfg = TrainConfig.from_dict({"d": {"head": "patch"}, "schedule.epochs": "7", "optim.lr_d": 1})
    assert cfg.d.head == "patch" and cfg.schedule.epochs == 7 and cfg.optim.lr_d == 1.0
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_no_full_batch_is_a_clear_error():
    from ganrf.data import DataError

    with pytest.raises(DataError, match="lower schedule.batch_size"):
        train(TINY | {"schedule.batch_size": 256})


def test_cli_dry_run_prints_resolved_config(capsys):
    from ganrf.cli import main

    assert main(["train", "--dataset", "synthetic", "--set", "d.head=patch", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["d.head"] == "patch" and printed["data.dataset"] == "synthetic"


def test_cli_train_writes_checkpoint_and_metrics(tmp_path):
    from ganrf.cli import main

    args = [
        "train",
        "--dataset",
        "synthetic",
        "--steps",
        "4",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--set",
        "data.synthetic_size=64",
        "--set",
        "g.width=0.0625",
        "--set",
        "eval.metrics=false",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert load_checkpoint(tmp_path / "checkpoint")["step"] == 4
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["status"] == "finished"


def test_a_key_added_since_the_checkpoint_takes_its_default():
    """A checkpoint from before a config key existed (data.photo, eval.features) resumes: its run
    behaved as the default; a key it holds with another value is still a different run."""
    import json

    from ganrf.config import TrainConfig
    from ganrf.training.checkpoint import check_compatible

    cfg = TrainConfig.from_dict({"d.layers": "conv3"})
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("data.photo", "eval.features")}
    check_compatible([cfg], [json.dumps(old)])
    photo = TrainConfig.from_dict({"d.layers": "conv3", "data.photo": "coffee"})
    with pytest.raises(CheckpointError, match="data.photo: 'astronaut' -> 'coffee'"):
        check_compatible([photo], [json.dumps(old)])
