"""Metrics: sanity on digit-like data, the reference set and its floor, local FID, the success
rule, the RGB code path, caching. Pinned score values: test_metric_values.py; ERF: test_erf.py."""

import json
import shutil

import pytest
import torch
import torchvision.transforms.functional as TF

from ganrf.config import TrainConfig
from ganrf.data import make_synthetic, to_float
from ganrf.metrics import (
    Evaluator,
    FeatureNet,
    MetricsError,
    inception_feature_net,
    scores,
)
from ganrf.training.loop import train

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
    for key in ("metric/fid", "metric/kid_mean", "metric/local_fid"):
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


def scipy_fd(a, b):
    import numpy as np
    import scipy.linalg

    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_local_fid_is_the_frechet_distance_of_the_evaluators_conv_map(evaluator):
    from ganrf.metrics.features import LOCAL_IMAGES, reference_images
    from ganrf.metrics.mnist_cnn import load_evaluator

    body = load_evaluator("cpu").body

    def local(x):  # every position of conv3-pool-conv3's map: 64-d vectors, 8x8-pixel views
        with torch.no_grad():
            m = body[:7](x[:LOCAL_IMAGES])
        assert m.shape[1:] == (64, 14, 14)
        return m.permute(0, 2, 3, 1).reshape(-1, 64).double().numpy()

    fake = TF.gaussian_blur(synthetic(N, seed=3), 3, 0.8)
    ref, _, _ = reference_images(evaluator.cfg, N)
    got = evaluator.score_images(fake)["metric/local_fid"]
    assert got == pytest.approx(scipy_fd(local(ref), local(fake)), rel=1e-6)
    assert got > 10 * evaluator.score_images(synthetic(N, seed=3))["metric/local_fid"]


def test_fid_floor_is_real_vs_reference_at_the_same_n(evaluator):
    from ganrf.metrics.features import reference_images
    from ganrf.metrics.mnist_cnn import load_evaluator

    net = load_evaluator("cpu")
    ref, floor, _ = reference_images(evaluator.cfg, N)
    with torch.no_grad():
        want = scipy_fd(net.features(ref).double().numpy(), net.features(floor).double().numpy())
    assert evaluator.fid_floor == pytest.approx(want, rel=1e-6) and want > 0
    out = evaluator.score_images(floor)
    assert out["metric/fid_floor"] == evaluator.fid_floor
    assert out["metric/fid"] == pytest.approx(want, rel=1e-6)
    assert out["metric/fid_over_floor"] == pytest.approx(1.0, rel=1e-6)


def test_reference_is_a_fixed_random_subset_of_the_test_split(tmp_path):
    from ganrf.data import load_mnist
    from ganrf.metrics.features import REFERENCE_SEED, reference_images
    from tests.test_data import fake_mnist

    fake_mnist(tmp_path, n=64)
    cfg = TrainConfig.from_dict(
        {"data.root": str(tmp_path), "data.download": False, "eval.samples": 16}
    )
    ref, floor, key = reference_images(cfg, 16)
    test = to_float(load_mnist(str(tmp_path), train=False, download=False)[0])
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(REFERENCE_SEED))
    assert torch.equal(ref, test[perm[:16]]) and not torch.equal(ref, test[:16])
    assert torch.equal(reference_images(cfg, 16)[0], ref)  # the same on every call
    assert len(floor) == 16 and key == f"mnist-test-s{REFERENCE_SEED}-16"


def test_success_rule_at_its_bounds():
    from ganrf.metrics import evaluation

    edge = {
        "metric/fid_over_floor": evaluation.SUCCESS_FID_OVER_FLOOR,
        "metric/precision": evaluation.SUCCESS_PRECISION,
        "metric/coverage": evaluation.SUCCESS_COVERAGE,
    }
    assert evaluation.success(edge) == 1
    for key, worse in (
        ("metric/fid_over_floor", 1.001),
        ("metric/precision", 0.999),
        ("metric/coverage", 0.999),
    ):
        assert evaluation.success(edge | {key: edge[key] * worse}) == 0, key


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
        "metric/local_fid",
        "metric/fid_floor",
        "metric/fid_over_floor",
        "metric/ssim",
        "metric/classifier_score",
        "metric/success",
        "erf/conv_radius50",
        "erf/decision_size95",
    ):
        assert key in out, key
    assert out["metric/samples"] == 200 and out["metric/feature_net"].startswith("mnist_cnn-")
    assert out["erf/conv_size95"] <= 5 and out["erf/decision_size95"] <= 5  # the conv rf: 5
    for kind in ("conv", "decision"):
        assert (tmp_path / out[f"artifact/erf_{kind}"]).name.startswith(f"{kind}-step")
        assert (tmp_path / out[f"artifact/erf_{kind}"]).exists()


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
    (cached,) = (tmp_path / "cache").glob("ref-mnist-test-s*-64-mnist_cnn-*.pt")
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
