"""What a mutation run over ganrf/metrics (mutmut; README, "Mutation testing") left alive, pinned:
the shipped evaluator's architecture against a forward pass written out with torch.nn.functional,
the evaluation noise, the Inception input conversion, the ERF image, the registry's refusals and
the cache's default place."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import ganrf.metrics as gm
from ganrf.config import TrainConfig
from ganrf.metrics import evaluate, features, spec
from ganrf.metrics.erf import ERF
from ganrf.metrics.mnist_cnn import evaluator_id, load_evaluator
from ganrf.models import build_discriminator


def test_the_shipped_evaluator_is_the_documented_network():
    # conv32 (3x3, pad 1, no bias) - BN - ReLU - maxpool 2 - conv64 (same) - BN - ReLU -
    # maxpool 2 - dense 128 (no bias) - BN - ReLU = the features; dense 10 = the logits.
    net = load_evaluator("cpu")
    w = net.state_dict()

    def bn(h, name):
        return F.batch_norm(
            h, w[f"{name}.running_mean"], w[f"{name}.running_var"], w[f"{name}.weight"],
            w[f"{name}.bias"], training=False, eps=1e-5,
        )  # fmt: skip

    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    h = F.max_pool2d(F.relu(bn(F.conv2d(x, w["body.0.weight"], padding=1), "body.1")), 2)
    h = F.max_pool2d(F.relu(bn(F.conv2d(h, w["body.4.weight"], padding=1), "body.5")), 2)
    feats = F.relu(bn(h.flatten(1) @ w["body.9.weight"].T, "body.10"))
    logits = feats @ w["classify.weight"].T + w["classify.bias"]
    torch.testing.assert_close(net.features(x), feats, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(net(x), logits, rtol=1e-5, atol=1e-4)
    # reports name it, and reference caches are keyed by it, by its weights' hash (README card)
    assert evaluator_id() == "mnist_cnn-c66705e93f27"


class _RecordingG(nn.Module):
    """A 'generator' that keeps the noise it is given and draws a grey level from it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.seen.append(z.clone())
        return torch.tanh(z[:, :1, None, None]).expand(-1, 1, 28, 28)


@pytest.fixture(scope="module")
def small():
    cfg = TrainConfig.from_dict(
        {"data.dataset": "synthetic", "eval.samples": 64, "eval.erf_images": 4, "seed": 3}
    )
    return cfg, evaluate.Evaluator(cfg, torch.device("cpu"))


def test_evaluation_noise_is_fixed_by_the_trial_seed_alone(small):
    cfg, ev = small
    d = build_discriminator(cfg.design())
    expected = torch.randn(64, 100, generator=torch.Generator().manual_seed(20_000 + 3))
    for global_seed in (0, 1):  # the global RNG has no say
        torch.manual_seed(global_seed)
        g = _RecordingG()
        ev(g=g, d=d, cfg=cfg, device=torch.device("cpu"), out_dir=None, step=0)
        assert torch.equal(torch.cat(g.seen), expected)


def test_an_unregistered_report_key_is_refused_by_name(small, monkeypatch):
    """A metric function that reads a key the registry does not compute is a bug, said by name
    (the page, the loader and Tune's table would not know the key)."""
    cfg, ev = small
    monkeypatch.setitem(ev.computes, "metric/fid", lambda e: e.value("metric/nosuch"))
    d = build_discriminator(cfg.design())
    with pytest.raises(KeyError, match="'metric/nosuch' is not registered"):
        ev(g=_RecordingG(), d=d, cfg=cfg, device=torch.device("cpu"), out_dir=None, step=0)


def test_inception_gets_uint8_rgb_and_the_fid_weights(monkeypatch):
    import torchmetrics.image.fid as tm_fid

    made: list[dict] = []
    nets: list[nn.Module] = []

    class StandIn(nn.Module):  # torchmetrics' NoTrainInceptionV3, without its weights
        def __init__(self, **kw) -> None:
            super().__init__()
            made.append(kw)
            nets.append(self)
            self.inputs: list[torch.Tensor] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.inputs.append(x)
            return x.float().mean((2, 3))

    monkeypatch.setattr(tm_fid, "NoTrainInceptionV3", StandIn)
    net = features.inception_feature_net(torch.device("cpu"), "/w/pt_inception.pth")
    assert net.name == "inception-v3"
    assert made == [
        {
            "name": "inception-v3-compat",
            "features_list": ["2048"],
            "feature_extractor_weights_path": "/w/pt_inception.pth",
        }
    ]
    grey = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]).view(1, 1, 2, 3)
    out = net._features(grey)
    # (x + 1) * 127.5, clamped to [0, 255], truncated to uint8; grey copied to 3 channels
    u8 = torch.tensor([0, 63, 127, 191, 255, 255], dtype=torch.uint8).view(1, 1, 2, 3)
    (seen,) = nets[0].inputs
    assert seen.dtype == torch.uint8 and torch.equal(seen, u8.expand(1, 3, 2, 3))
    assert not nets[0].training and out.shape == (1, 3)
    features.inception_feature_net(torch.device("cpu"))
    assert made[-1]["feature_extractor_weights_path"] is None  # "" = torchmetrics' download


def test_the_erf_image_is_the_map_scaled_to_its_maximum(tmp_path):
    m = torch.arange(12, dtype=torch.float32).view(3, 4) / 66  # sums to 1, max 11/66
    rel = evaluate.save_erf(ERF(m, (1.0, 1.5), 1.0, 2.0), tmp_path / "trial", 1200, "conv")
    assert rel == "erf/conv-step00001200.png"
    png = np.asarray(Image.open(tmp_path / "trial" / rel))[..., 0]
    expected = np.floor(np.arange(12).reshape(3, 4) / 11 * 255 + 0.5)
    assert png.tolist() == expected.tolist()


def test_the_registry_refuses_a_second_key_and_a_bare_one(monkeypatch):
    monkeypatch.setattr(spec, "METRICS", {})
    m = spec.Metric("metric/x", "x")
    assert spec.register(m) is m
    assert list(spec.METRICS.items()) == [("metric/x", m)]
    with pytest.raises(ValueError, match="'metric/x' is registered twice"):
        spec.register(spec.Metric("metric/x", "again"))
    with pytest.raises(ValueError, match="'fid' must be namespaced, e.g. 'metric/fid'"):
        spec.register(spec.Metric("fid", "fid"))
    assert list(spec.METRICS) == ["metric/x"]


def test_the_package_names_load_their_modules_on_first_use():
    from ganrf.metrics import erf

    assert gm.conv_erf is erf.conv_erf and gm.Evaluator is evaluate.Evaluator
    with pytest.raises(AttributeError, match="has no attribute 'nosuch'"):
        gm.nosuch  # noqa: B018


def test_reference_features_are_cached_under_home_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("GANRF_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert features.cache_dir() == tmp_path / ".cache" / "ganrf"
    monkeypatch.setenv("GANRF_CACHE", str(tmp_path / "elsewhere"))
    assert features.cache_dir() == tmp_path / "elsewhere"


def test_the_mnist_reference_is_a_seeded_test_subset_and_the_floor_a_training_one(tmp_path):
    from tests.test_data import _idx

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, base in (("train", 0), ("t10k", 100)):  # image i of a split is filled with base + i
        imgs = (torch.arange(40, dtype=torch.uint8) + base)[:, None, None].expand(40, 28, 28)
        _idx(
            raw / f"{split}-images-idx3-ubyte",
            imgs.contiguous().numpy().tobytes(),
            (40, 28, 28),
            0x803,
        )
        _idx(raw / f"{split}-labels-idx1-ubyte", bytes(40), (40,), 0x801)
    cfg = TrainConfig.from_dict({"data.root": str(tmp_path), "data.download": False})
    ref, floor, key = features.reference_images(cfg, 16)
    pick = torch.randperm(40, generator=torch.Generator().manual_seed(2016))[:16]
    assert torch.equal(ref[:, 0, 5, 7], (pick + 100).float() / 127.5 - 1)  # test split
    assert torch.equal(floor[:, 0, 5, 7], pick.float() / 127.5 - 1)  # training split
    assert key == "mnist-test-s2016-16" and ref.shape == floor.shape == (16, 1, 28, 28)


def test_the_synthetic_reference_and_floor_come_from_their_own_seeds():
    from ganrf.data import make_synthetic, to_float

    cfg = TrainConfig.from_dict({"data.dataset": "synthetic", "seed": 5})
    ref, floor, key = features.reference_images(cfg, 8)
    assert torch.equal(ref, to_float(make_synthetic(8, 28, 1, seed=5 + 7919)[0]))
    assert torch.equal(floor, to_float(make_synthetic(8, 28, 1, seed=5 + 7920)[0]))
    assert key == ""  # cheap to make again: never cached


def test_every_report_carries_the_success_verdict(small):
    """Real-like samples (synthetic digits of another seed) pass the rule, noise fails it."""
    from ganrf.data import make_synthetic, to_float

    _, ev = small
    like = ev.score_images(to_float(make_synthetic(64, seed=99)[0]))
    noise = ev.score_images(torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert (like["metric/success"], noise["metric/success"]) == (1, 0)
    assert like["metric/fid_over_floor"] == pytest.approx(1.078, abs=2e-3)  # the rule's inputs
    assert (like["metric/precision"], like["metric/coverage"]) == (1.0, 0.96875)


def test_class_scores_count_at_their_thresholds_inclusive():
    from ganrf.metrics import scores

    probs = torch.zeros(100, 10, dtype=torch.float64)
    probs[:99, 0], probs[:99, 1] = 0.9, 0.1  # 99 samples named 0 with p exactly 0.9
    probs[99, 3] = 1.0  # class 3 holds exactly 1% of the samples
    out = scores.class_scores(probs)
    assert out["class_count"] == 2 and out["confident_share"] == 1.0
    expected_kl = 0.99 * np.log(0.99 * 10) + 0.01 * np.log(0.01 * 10)
    assert out["class_kl"] == pytest.approx(expected_kl, rel=1e-12)


def test_an_rgb_reference_is_a_seeded_training_subset_and_the_next_n_its_floor(monkeypatch):
    import ganrf.data

    calls = []

    class Loaded:  # what load_training_images gives: uint8 images, image i filled with i
        def __init__(self, count: int | None) -> None:
            self.num_images = count or 10**6
            self.images = None
            if count is not None:
                self.images = torch.arange(count, dtype=torch.uint8)[:, None, None, None]
                self.images = self.images.expand(count, 3, 4, 4)

    def fake_load(data_cfg, device, seed):
        calls.append((data_cfg.dataset, device.type, seed))
        return Loaded(fake_load.count)

    monkeypatch.setattr(ganrf.data, "load_training_images", fake_load)
    cfg = TrainConfig.from_dict(
        {
            "data.dataset": "celeba",
            "data.channels": 3,
            "data.image_size": 64,
            "g.kind": "dcgan",
            "seed": 4,
        }
    )
    for count, has_floor in ((10, True), (8, True), (7, False)):
        fake_load.count = count
        ref, floor, key = features.reference_images(cfg, 4)
        order = torch.randperm(count, generator=torch.Generator().manual_seed(2016))
        assert torch.equal(ref[:, 0, 0, 0], order[:4].float() / 127.5 - 1)
        if has_floor:  # the next n of the same permutation, disjoint from the reference
            assert torch.equal(floor[:, 0, 0, 0], order[4:8].float() / 127.5 - 1)
        else:
            assert floor is None
        assert key == "celeba-train-s2016-4"
    assert calls == [("celeba", "cpu", 4)] * 3
    fake_load.count = None  # streamed from disk, not held in memory
    with pytest.raises(features.MetricsError, match="set data.subset"):
        features.reference_images(cfg, 4)


@pytest.mark.parametrize(
    "argv, said",
    [
        (["-"], "no mutant names (ganrf.metrics...__mutmut_N) in 'mutmut: nothing'"),
        (
            ["ganrf.metrics.scores.x_kid__mutmut_1"],
            "these are not mutmut's mutants: run this inside",
        ),
    ],
)
def test_mutation_numbers_refuses_input_it_cannot_use(argv, said, monkeypatch, capsys):
    """scripts/mutation_numbers.py (README, "Mutation testing") stops before any work."""
    import io
    import sys

    from scripts import mutation_numbers

    monkeypatch.setattr(sys, "argv", ["mutation_numbers.py", "--data-root", "/nonexistent", *argv])
    monkeypatch.setattr(sys, "stdin", io.StringIO("mutmut: nothing"))
    assert mutation_numbers.main() == 2
    assert capsys.readouterr().err.startswith(f"mutation_numbers.py: error: {said}")
