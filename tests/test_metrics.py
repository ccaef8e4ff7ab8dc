"""Metrics: sanity on digit-like data, the ERF inside the rf, the RGB code path, caching."""

import json
import shutil

import pytest
import torch
import torchvision.transforms.functional as TF

from ganrf.config import TrainConfig
from ganrf.data import make_synthetic, to_float
from ganrf.designs import onelayer
from ganrf.metrics import (
    Evaluator,
    FeatureNet,
    MetricsError,
    effective_rf,
    inception_feature_net,
    scores,
)
from ganrf.models import build_discriminator
from ganrf.train import train

N = 600


@pytest.fixture(scope="module")
def evaluator():
    cfg = TrainConfig.from_dict({"data.dataset": "synthetic", "eval.samples": N, "seed": 0})
    return Evaluator(cfg, torch.device("cpu"))


def synthetic(n, seed):
    return to_float(make_synthetic(n, seed=seed)[0])


def test_real_vs_real_near_zero_and_ranking(evaluator):
    real = evaluator.score_images(synthetic(N, seed=123))
    blurred = evaluator.score_images(TF.gaussian_blur(synthetic(N, seed=123), 5, 1.5))
    noise = evaluator.score_images(torch.rand(N, 1, 28, 28) * 2 - 1)
    assert real["metric/fid"] < 2.0
    for key in ("metric/fid", "metric/kid_mean", "metric/patch_fid"):
        assert real[key] < blurred[key] < noise[key], key
    assert real["metric/precision"] > 0.7 and real["metric/recall"] > 0.7
    assert noise["metric/precision"] == 0 and noise["metric/coverage"] == 0


def test_one_digit_generator_low_coverage_high_ssim(evaluator):
    varied = evaluator.score_images(synthetic(N, seed=5))
    one = synthetic(1, seed=5).expand(N, -1, -1, -1) + 0.02 * torch.randn(N, 1, 28, 28)
    collapsed = evaluator.score_images(one.clamp(-1, 1))
    assert collapsed["metric/class_count"] == 1 and varied["metric/class_count"] >= 3
    assert collapsed["metric/class_kl"] == pytest.approx(
        torch.log(torch.tensor(10.0)).item(), abs=1e-6
    )
    assert collapsed["metric/ssim"] > 0.8 > varied["metric/ssim"]
    assert collapsed["metric/classifier_score"] == pytest.approx(1.0, abs=0.05)
    assert collapsed["metric/coverage"] < varied["metric/coverage"]


def test_class_scores_known_values():
    ten = torch.eye(10).repeat(5, 1)  # confident, balanced
    s = scores.class_scores(ten)
    assert s["classifier_score"] == pytest.approx(10, rel=1e-6)
    assert s["class_count"] == 10 and s["class_kl"] == pytest.approx(0, abs=1e-9)
    assert s["confident_share"] == 1.0


def test_non_finite_features_give_nan_not_a_lapack_abort():
    real, bad = torch.randn(50, 4), torch.full((50, 4), float("nan"))
    assert torch.isnan(torch.tensor(scores.frechet_distance(real, bad)))
    assert all(
        torch.isnan(torch.tensor(v)) for v in scores.kid(real, bad, subsets=2, subset_size=10)
    )


def test_prdc_identical_sets():
    x = torch.randn(200, 4)
    s = scores.prdc(x, x.clone(), k=5)
    assert s["precision"] == 1 and s["recall"] == 1 and s["coverage"] == 1


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_erf_of_one_layer_patch_discriminator_lies_within_rf(k):
    design = onelayer(k, head="patch")
    torch.manual_seed(0)
    d = build_discriminator(design)
    erf = effective_rf(d, synthetic(32, seed=1), design)
    assert erf.center == (14.0, 14.0)  # central unit (14, 14) of the 28x28 map, 'same' padding
    assert erf.size95 <= k and erf.size50 <= k
    outside = erf.map.clone()
    lo, hi = 14 - (k - 1) // 2, 14 + k // 2 + 1
    outside[lo:hi, lo:hi] = 0
    assert outside.sum() == 0  # not one grain of gradient outside the theoretical rf


def test_erf_image_head_spreads_beyond_conv_rf():
    design = onelayer(3)  # conv rf 3, dense head: the decision sees the whole image
    torch.manual_seed(0)
    erf = effective_rf(build_discriminator(design), synthetic(32, seed=1), design)
    assert erf.size95 > 3


def test_train_reports_metrics_and_writes_erf_map(tmp_path):
    cfg = {
        "data.dataset": "synthetic",
        "data.synthetic_size": 128,
        "schedule.batch_size": 32,
        "schedule.steps": 2,
        "g.width": 0.0625,
        "d.width": 0.125,
        "eval.samples": 200,
        "eval.erf_images": 8,
        "d.head": "patch",
        "d.layers": "conv3,conv3",
        "device": "cpu",
    }
    out = train(cfg, out_dir=tmp_path)
    for key in (
        "metric/fid",
        "metric/kid_mean",
        "metric/precision",
        "metric/patch_fid",
        "metric/ssim",
        "metric/classifier_score",
        "metric/success",
        "erf/radius50",
    ):
        assert key in out, key
    assert out["metric/samples"] == 200 and out["metric/feature_net"].startswith("mnist_cnn-")
    assert out["erf/size95"] <= 5  # the conv rf of the trial's design
    assert (tmp_path / out["artifact/erf"]).exists()


def test_rgb_code_path_with_stand_in_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 4, 4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 16 * 16, 16),
    )
    cfg = TrainConfig.from_dict(
        {
            "data.dataset": "synthetic",
            "data.image_size": 64,
            "data.channels": 3,
            "g.kind": "dcgan",
            "eval.samples": 200,
        }
    )
    ev = Evaluator(cfg, torch.device("cpu"), feature_net=FeatureNet("stand-in", net))
    real = to_float(make_synthetic(200, 64, 3, seed=9)[0])
    same, noise = ev.score_images(real), ev.score_images(torch.rand(200, 3, 64, 64) * 2 - 1)
    assert same["metric/fid"] < noise["metric/fid"]
    assert "metric/classifier_score" not in same  # no classifier for RGB
    assert same["metric/feature_net"] == "stand-in"


def test_inception_weights_missing_is_a_clear_error(tmp_path):
    with pytest.raises(MetricsError, match="eval.inception_weights"):
        inception_feature_net(torch.device("cpu"), str(tmp_path / "missing.pth"))


def test_reference_features_cached_on_disk(tmp_path, monkeypatch):
    from tests.test_data import fake_mnist

    monkeypatch.setenv("GANRF_CACHE", str(tmp_path / "cache"))
    fake_mnist(tmp_path / "data", n=64)
    cfg = TrainConfig.from_dict(
        {"data.root": str(tmp_path / "data"), "data.download": False, "eval.samples": 64}
    )
    Evaluator(cfg, torch.device("cpu"))
    (cached,) = (tmp_path / "cache").glob("ref-mnist-test-64-mnist_cnn-*.pt")
    shutil.rmtree(tmp_path / "data")  # the second evaluator must not need the features again
    before = cached.stat().st_mtime_ns
    fake_mnist(tmp_path / "data", n=64)
    Evaluator(cfg, torch.device("cpu"))
    assert cached.stat().st_mtime_ns == before


def test_evaluator_weights_match_recorded_hash():
    from ganrf.metrics.mnist_cnn import CARD, WEIGHTS, load_evaluator, sha256

    card = json.loads(CARD.read_text())
    assert sha256(WEIGHTS) == card["sha256"]
    assert card["mnist_test_accuracy"] >= 0.99
    net = load_evaluator("cpu")
    assert net.features(torch.zeros(2, 1, 28, 28)).shape == (2, 128)


def test_evaluator_tampered_weights_refused(tmp_path, monkeypatch):
    from ganrf.metrics import mnist_cnn as ev

    bad = tmp_path / "mnist_cnn.pt"
    data = bytearray(ev.WEIGHTS.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensors
    bad.write_bytes(bytes(data))
    shutil.copy(ev.CARD, tmp_path / "mnist_cnn.json")
    monkeypatch.setattr(ev, "WEIGHTS", bad)
    monkeypatch.setattr(ev, "CARD", tmp_path / "mnist_cnn.json")
    ev.load_evaluator.cache_clear()
    with pytest.raises(RuntimeError, match="does not match its recorded sha256"):
        ev.load_evaluator("cpu")
    ev.load_evaluator.cache_clear()


@pytest.mark.slow
def test_real_mnist_train_vs_test_fid(tmp_path):
    """Opt-in (--runslow): real MNIST from ../shared/data (or GANRF_MNIST_ROOT)."""
    import os
    import subprocess
    from pathlib import Path

    from ganrf.data import load_mnist

    root = os.environ.get("GANRF_MNIST_ROOT")
    if not root:
        unpack = Path(__file__).resolve().parents[2] / "shared" / "tools" / "unpack-mnist.sh"
        if not unpack.exists():
            pytest.skip("no real MNIST: set GANRF_MNIST_ROOT")
        root = str(tmp_path / "mnist")
        subprocess.run([str(unpack), root], check=True, capture_output=True)
    cfg = TrainConfig.from_dict({"data.root": root, "data.download": False, "eval.samples": 10_000})
    ev = Evaluator(cfg, torch.device("cpu"))
    train_images, _ = load_mnist(root, train=True, download=False)
    result = ev.score_images(to_float(train_images[:10_000]))
    assert result["metric/fid"] < 2.0 and result["metric/success"] == 1
