"""Every score pinned to values of independent numpy/scipy references on small fixed sets.

The references follow the papers and reference code, not ganrf: Fréchet distance with scipy's
``sqrtm``; unbiased KID (Binkowski et al. 2018, cubic polynomial kernel); precision, recall,
density and coverage as in Naeem et al.'s ``prdc`` package (strict ``<``, k-th neighbour radii
excluding the point itself); the Inception-Score analogue from scipy's entropies. Each value is
also written out as a number, so a change of the reference is caught too. The sets are made by
numpy's ``default_rng`` (stable across versions).
"""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import cdist
from scipy.stats import entropy
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ganrf.metrics import scores


def feature_sets():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 6))
    fake = rng.normal(size=(150, 6)) @ (rng.normal(size=(6, 6)) * 0.6) + 0.3
    return real, fake


def ref_fd(a, b):
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def ref_kid(a, b):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 over the whole sets."""
    d, m = a.shape[1], len(a)
    kxx, kyy, kxy = ((a @ a.T / d + 1) ** 3), ((b @ b.T / d + 1) ** 3), ((a @ b.T / d + 1) ** 3)
    off = m * (m - 1)
    return float(
        (kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean()
    )


def ref_prdc(real, fake, k):
    """Naeem et al.'s prdc package, compute_prdc, in plain numpy."""

    def radii(x):
        d = cdist(x, x)
        return np.partition(d, k, axis=-1)[:, k]  # k-th neighbour, the zero to itself excluded

    r_real, r_fake = radii(real), radii(fake)
    d = cdist(real, fake)  # (N_real, N_fake)
    return {
        "precision": (d < r_real[:, None]).any(axis=0).mean(),
        "recall": (d < r_fake[None, :]).any(axis=1).mean(),
        "density": (1.0 / k) * (d < r_real[:, None]).sum(axis=0).mean(),
        "coverage": (d.min(axis=1) < r_real).mean(),
    }


def test_frechet_distance_matches_scipy_sqrtm():
    real, fake = feature_sets()
    got = scores.frechet_distance(torch.tensor(real), torch.tensor(fake))
    assert got == pytest.approx(ref_fd(real, fake), rel=1e-9)
    assert got == pytest.approx(3.52336051050319, rel=1e-9)
    # the covariance term matters here: the means alone are 0.536 apart
    assert scores.frechet_distance(torch.tensor(real), torch.tensor(real)) == pytest.approx(
        0, abs=1e-9
    )


def test_kid_is_unbiased_mmd_with_the_cubic_kernel():
    real, fake = feature_sets()
    fake = fake[:100]
    real = real[:100]
    mean, std = scores.kid(torch.tensor(real), torch.tensor(fake), subsets=1, subset_size=100)
    assert mean == pytest.approx(ref_kid(real, fake), rel=1e-9)
    assert mean == pytest.approx(KID_VALUE, rel=1e-9)
    assert std == 0.0
    # several subsets that are each the whole set: one value, so a std of exactly 0 (6e-16 was
    # read as a spread by ganrf score on small sets)
    _, std = scores.kid(torch.tensor(real), torch.tensor(fake), subsets=20, subset_size=1000)
    assert std == 0.0
    _, std = scores.kid(torch.tensor(real), torch.tensor(fake), subsets=20, subset_size=50)
    assert std > 0  # real subsets do spread
    # unbiased: two samples of one distribution average to ~0, not to a positive bias
    same, _ = scores.kid(torch.tensor(real[:50]), torch.tensor(real[50:]), 1, 50)
    assert same == pytest.approx(ref_kid(real[:50], real[50:]), rel=1e-9)


KID_VALUE = 2.3835830124195767


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_naeem_reference(k):
    real, fake = feature_sets()
    fake = fake * 0.7  # overlapping, neither set inside the other: every score strictly between
    got = scores.prdc(torch.tensor(real), torch.tensor(fake), k=k, chunk=64)
    want = ref_prdc(real, fake, k)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert got == pytest.approx(PRDC_VALUES[k], abs=1e-6)


PRDC_VALUES = {
    3: {
        "precision": 0.8733333333333333,
        "recall": 0.5,
        "density": 1.0577777777777777,
        "coverage": 0.67,
    },
    5: {"precision": 0.9133333333333333, "recall": 0.655, "density": 1.076, "coverage": 0.81},
}


def test_prdc_ball_boundary_is_strict():
    # fake sits exactly on real[0]'s 1-NN radius: outside under Naeem's strict "<"
    real = torch.tensor([[0.0], [1.0], [3.0]])
    fake = torch.tensor([[-1.0], [-9.0]])
    s = scores.prdc(real, fake, k=1)
    assert s["precision"] == 0.0 and s["coverage"] == 0.0 and s["density"] == 0.0


def test_class_scores_match_scipy_entropies():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(40, 10)) * 2.0
    logits[:, 3] += 1.5  # an unbalanced marginal
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = scores.class_scores(torch.tensor(probs))
    marginal = probs.mean(0)
    want_is = math.exp(np.mean([entropy(p, marginal) for p in probs]))
    hist = np.bincount(probs.argmax(1), minlength=10) / len(probs)
    want_kl = entropy(hist, np.full(10, 0.1))  # 0 log 0 = 0
    assert got["classifier_score"] == pytest.approx(want_is, rel=1e-9)
    assert got["class_kl"] == pytest.approx(want_kl, rel=1e-9)
    assert got["confident_share"] == pytest.approx((probs.max(1) >= 0.9).mean())
    assert got["class_count"] == int((hist >= 0.01).sum())
    assert got == pytest.approx(CLASS_VALUES, rel=1e-9)


CLASS_VALUES = {
    "classifier_score": 2.1291300627890175,
    "class_count": 9,
    "class_kl": 0.22975023463745656,
    "confident_share": 0.05,
}


def test_unsure_predictions_score_one_whatever_the_marginal():
    # every sample unsure (uniform p(y|x)): no information, score 1 although p(y) is uniform
    s = scores.class_scores(torch.full((50, 10), 0.1))
    assert s["classifier_score"] == pytest.approx(1.0, abs=1e-9)
    assert s["confident_share"] == 0.0
    # a confident but one-class set also scores 1
    assert scores.class_scores(torch.eye(10)[[4] * 20])["classifier_score"] == pytest.approx(1.0)
    # a class under 1% of the samples is not counted
    probs = torch.eye(10)[[0] * 150 + [1] * 50 + [2]]
    assert scores.class_scores(probs)["class_count"] == 2


class DeviceMixes(TorchDispatchMode):
    """Records every op whose tensor arguments or results lie on more than one device."""

    def __init__(self):
        super().__init__()
        self.mixed = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [
            t
            for t in tree_flatten((args, kwargs, out))[0]
            if isinstance(t, torch.Tensor) and t.dim() > 0  # 0-d CPU scalars mix legally
        ]
        if len({t.device.type for t in tensors}) > 1:
            self.mixed.append(str(func))
        return out


def on_one_device(fn, *args, **kwargs):
    """Run ``fn`` on 'meta' inputs; the ops that mixed devices (a CUDA crash) are returned."""
    with DeviceMixes() as mode:
        result = fn(*args, **kwargs)
    return result, mode.mixed


def test_scores_keep_tensors_on_the_inputs_device():
    """prdc on 'meta' tensors: a tensor made on the CPU would meet them (on CUDA: a crash)."""
    real, fake = torch.randn(30, 4, device="meta"), torch.randn(20, 4, device="meta")
    out, mixed = on_one_device(scores.prdc_tensors, real, fake, k=3, chunk=8)
    assert {v.device.type for v in out.values()} == {"meta"} and mixed == []


def test_prdc_uses_k_5_unless_told():
    real, fake = feature_sets()
    got = scores.prdc(torch.tensor(real), torch.tensor(fake * 0.7))
    assert got == pytest.approx(PRDC_VALUES[5], abs=1e-6)


def test_kid_draws_20_subsets_of_at_most_1000_of_the_smaller_set(monkeypatch):
    """The defaults the README states (20 subsets of 1,000), capped by the smaller set; the MMD
    itself is pinned above."""
    made = []
    real_kid = scores.KernelInceptionDistance

    def recording(**kwargs):
        made.append({k: kwargs[k] for k in ("subsets", "subset_size")})
        return real_kid(**kwargs)

    monkeypatch.setattr(scores, "KernelInceptionDistance", recording)
    real, fake = feature_sets()
    scores.kid(torch.tensor(real[:30]), torch.tensor(fake[:50]))
    scores.kid(torch.tensor(real[:50]), torch.tensor(fake[:40]))
    scores.kid(torch.tensor(np.tile(real, (6, 1))), torch.tensor(np.tile(fake, (8, 1))))
    assert made == [
        {"subsets": 20, "subset_size": 30},
        {"subsets": 20, "subset_size": 40},
        {"subsets": 20, "subset_size": 1000},
    ]


def test_mean_pairwise_ssim_is_the_mean_over_500_seeded_pairs_of_distinct_samples():
    """Three images, so each pair's SSIM (scikit-image, data range 2 for [-1, 1]) is a table
    entry; the pairs are those the docstring states: numpy's default_rng(0), first index uniform
    over the samples, the second a uniform non-zero offset from it (mod n)."""
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 12, 12, generator=g) * 2 - 1
    images[1] = (images[0] + 0.5 * images[1]).clamp(-1, 1)  # three pairs unlike one another
    images[2] = (images[2] - 0.4 * images[1]).clamp(-1, 1)
    x = images[:, 0].numpy()
    table = np.array(
        [[structural_similarity(x[i], x[j], data_range=2.0) for j in range(3)] for i in range(3)]
    )
    assert len({round(v, 6) for v in table[np.triu_indices(3, 1)]}) == 3
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 500)
    b = (a + rng.integers(1, 3, 500)) % 3
    want = table[a, b].mean()
    assert scores.mean_pairwise_ssim(images) == pytest.approx(want, rel=1e-7)
    assert want == pytest.approx(SSIM_VALUE, rel=1e-6)


SSIM_VALUE = 0.23004824178989255  # 0.734, -0.017, 0.020 (pairs 01, 02, 12) weighted by the draws
