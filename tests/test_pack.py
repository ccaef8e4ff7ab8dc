"""Packed trials: K member GANs as one computation, each exactly an independent training."""

import pytest
import torch

from ganrf.config import ConfigError, TrainConfig
from ganrf.training.checkpoint import load_checkpoint
from ganrf.training.loop import train, train_pack
from ganrf.training.pack import Pack, check_pack

BASE = {
    "data.dataset": "synthetic",
    "data.synthetic_size": 96,
    "schedule.batch_size": 16,
    "schedule.steps": 20,
    "schedule.eval_every_steps": 1,
    "g.width": 0.0625,
    "d.width": 0.125,
    "d.dropout": 0.0,
    "d.norm": "batch",  # BatchNorm statistics must stay per member too
    "d.layers": "conv3,conv3",
    "eval.metrics": False,
    "device": "cpu",
}


def _cfg(**kw) -> TrainConfig:
    return TrainConfig.from_dict(BASE | kw)


def _solo_losses(cfg: TrainConfig) -> list[tuple[float, float]]:
    seen = []
    train(cfg, lambda m, c: seen.append((m["loss/d"], m["loss/g"])))
    return seen


def _pack_losses(cfgs, **kw) -> list[list[tuple[float, float] | None]]:
    seen = []

    def report(metrics, ckpt):
        seen.append([None if m is None else (m["loss/d"], m["loss/g"]) for m in metrics])

    train_pack(cfgs, report, **kw)
    return seen


@pytest.mark.parametrize(
    "members",
    [
        [{"seed": 0}, {"seed": 1}, {"seed": 2}],  # the seeds of one grid point
        # two designs, interleaved: the stacked groups are [0, 3] and [1, 2]
        [
            {"seed": 0},
            {"seed": 1, "d.layers": "conv5"},
            {"seed": 0, "d.layers": "conv5"},
            {"seed": 1},
        ],
    ],
    ids=["seeds", "designs"],
)
def test_each_member_trains_exactly_as_it_would_alone(members):
    cfgs = [_cfg(**m) for m in members]
    packed = _pack_losses(cfgs)
    assert len(packed) == 20
    for i, cfg in enumerate(cfgs):
        solo = _solo_losses(cfg)
        mine = [step[i] for step in packed]
        assert mine[0] == pytest.approx(solo[0], abs=1e-5)  # step 1
        assert mine[19] == pytest.approx(solo[19], rel=1e-3)  # step 20
    # and the members really differ from each other
    assert packed[0][0] != packed[0][1]


def test_a_diverged_member_is_frozen_and_the_others_go_on(monkeypatch):
    packs = []
    init = Pack.__init__

    def keep(self, *a, **kw):
        init(self, *a, **kw)
        packs.append(self)

    monkeypatch.setattr(Pack, "__init__", keep)
    cfgs = [_cfg(seed=s, **{"schedule.steps": 6}) for s in (0, 1, 2)]
    seen = []

    def report(metrics, ckpt):
        seen.append(metrics)
        if metrics[0]["progress/step"] == 2:  # poison member 1's generator after step 2
            with torch.no_grad():
                next(iter(packs[0].g_stack.params.values()))[1].fill_(float("nan"))

    final = train_pack(cfgs, report)
    assert seen[2][1]["status"] == "diverged" and seen[2][1]["diverged_step"] == 2
    assert all(step[1] is None for step in seen[3:])  # reported once, then frozen
    assert [m["status"] for m in final] == ["finished", "diverged", "finished"]
    for i in (0, 2):  # the others are untouched by member 1's NaNs
        solo = _solo_losses(cfgs[i])
        mine = [v for s in seen for v in (s[i]["loss/d"], s[i]["loss/g"])]
        assert mine == pytest.approx([v for pair in solo for v in pair], rel=1e-4)
    frozen = next(iter(packs[0].g_stack.params.values()))[1]
    assert torch.isfinite(frozen).all() and not frozen.any()  # zeroed, finite, unchanging


def test_pack_checkpoint_resumes_every_member_exactly(tmp_path):
    import shutil

    cfgs = [_cfg(seed=s, **{"schedule.steps": 6, "schedule.eval_every_steps": 3}) for s in (0, 1)]
    kept = {}

    def keeper(name):
        def report(metrics, ckpt):
            dest = tmp_path / f"{name}-{metrics[0]['progress/step']}"
            shutil.copytree(ckpt, dest)
            kept[(name, metrics[0]["progress/step"])] = dest

        return report

    straight = train_pack(cfgs, keeper("a"))
    resumed = train_pack(cfgs, keeper("b"), resume_from=kept[("a", 3)])
    assert [m["loss/d"] for m in resumed] == [m["loss/d"] for m in straight]
    a = load_checkpoint(kept[("a", 6)])
    b = load_checkpoint(kept[("b", 6)])
    for key, value in a["pack"]["g"].items():
        assert torch.equal(value, b["pack"]["g"][key]), key
    assert [torch.equal(x, y) for x, y in zip(a["noise_rngs"], b["noise_rngs"])] == [True, True]


@pytest.mark.parametrize(
    "other, match",
    [
        ({"d.dropout": 0.3}, "dropout"),
        ({"loss.kind": "wgan-gp"}, "WGAN-GP"),
        ({"optim.lr_d": 3e-4}, "differ in \\['optim.lr_d'\\]"),
        ({"seed": 0}, "same design and seed"),
    ],
)
def test_what_cannot_share_a_pack_is_refused_in_one_sentence(other, match):
    with pytest.raises(ConfigError, match=match):
        check_pack([_cfg(seed=0), _cfg(**({"seed": 1} | other))])


def test_residual_spectral_norm_members_pack_exactly():
    # Spectral norm packs now (its power iteration is batched per member); residual D, residual
    # G and hinge, as --family resnet trains them.
    res = {
        "g.kind": "resnet",
        "d.layers": "res3s2,res3",
        "d.norm": "spectral",
        "loss.kind": "hinge",
        "schedule.steps": 3,
    }
    cfgs = [_cfg(seed=s, **res) for s in (0, 1)]
    assert check_pack(cfgs) is None
    packed = _pack_losses(cfgs)
    for i, cfg in enumerate(cfgs):
        mine = [v for step in packed for v in step[i]]
        assert mine == pytest.approx([v for pair in _solo_losses(cfg) for v in pair], rel=1e-4)
    assert packed[0][0] != packed[0][1]
