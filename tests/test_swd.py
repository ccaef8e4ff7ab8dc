"""The sliced Wasserstein distance (ganrf.metrics.swd) against a slow NumPy version written from
the paper (Karras et al. 2018, section 5 and appendix D: cv2's pyramid filters, 7x7 patches,
per-channel normalisation, sorted projections on random unit directions), given the same random
draws, and against the published properties: 0 for identical sets, growing with blur and noise."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from ganrf.metrics import swd as S

# --------------------------------------------------------------------------------------------
# The NumPy version: one loop per patch and per direction, nothing shared with ganrf's code
# --------------------------------------------------------------------------------------------

GAUSS = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float64) / 256.0


def np_pyr_down(x):  # cv2.pyrDown: blur, keep the even pixels (mirror: d c b | a b c d)
    return scipy.ndimage.convolve(x, GAUSS[None, None], mode="mirror")[:, :, ::2, ::2]


def np_pyr_up(x, shape):  # cv2.pyrUp: zeros between pixels, blur with 4x the filter
    n, c, h, w = x.shape
    up = np.zeros((n, c, 2 * h, 2 * w))
    up[:, :, ::2, ::2] = x
    return scipy.ndimage.convolve(up, 4 * GAUSS[None, None], mode="mirror")[
        :, :, : shape[0], : shape[1]
    ]


def np_pyramid(x, levels):
    out = [x.astype(np.float64)]
    for _ in range(1, levels):
        out.append(np_pyr_down(out[-1]))
        out[-2] = out[-2] - np_pyr_up(out[-1], out[-2].shape[-2:])
    return out


def np_descriptors(level, images, ys, xs):
    desc = np.stack([level[i, :, y : y + 7, x : x + 7] for i, y, x in zip(images, ys, xs)])
    desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
    desc = desc / desc.std(axis=(0, 2, 3), keepdims=True)
    return desc.reshape(len(desc), -1)


def np_swd(real, fake, draws):
    """Per level and mean, x 10^3, as the paper: real/fake uint8-scaled (N, C, H, W)."""
    levels = len(draws.ys)
    out = []
    for k, (lr, lf) in enumerate(zip(np_pyramid(real, levels), np_pyramid(fake, levels))):
        where = (draws.images.numpy(), draws.ys[k].numpy(), draws.xs[k].numpy())
        a, b = np_descriptors(lr, *where), np_descriptors(lf, *where)
        per_repeat = []
        for dirs in draws.directions.double().numpy():
            per_dir = []
            for d in dirs.T:
                pa, pb = np.sort(a @ d), np.sort(b @ d)
                per_dir.append(np.mean(np.abs(pa - pb)))
            per_repeat.append(np.mean(per_dir))
        out.append(1e3 * np.mean(per_repeat))
    return out + [np.mean(out)]


def _images(n, c, size, seed):
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(n, c, size + 4, size + 4, generator=g), 5, 1)
    return smooth * 2 - 1  # [-1, 1], spatially correlated like pictures


@pytest.mark.parametrize(("c", "size"), [(3, 32), (1, 28), (3, 17)])
def test_matches_the_numpy_version(c, size):
    real, fake = _images(6, c, size, 1), _images(6, c, size, 2) * 0.7
    got = S.swd(real, fake, seed=5)
    levels = S.levels_for(size)
    sizes = [(size, size)]
    for _ in range(1, levels):
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    draws = S.draw(6, c, sizes, 5)
    want = np_swd(((real + 1) * 127.5).numpy(), ((fake + 1) * 127.5).numpy(), draws)
    assert list(got) == [f"l{k}" for k in range(levels)] + ["mean"]
    np.testing.assert_allclose(list(got.values()), want, rtol=2e-4)


def test_pyramid_matches_cv2s_filters():
    x = _images(2, 3, 20, 3).numpy() * 100
    got = S.laplacian_pyramid(torch.from_numpy(x), 2)
    want = np_pyramid(x, 2)
    assert [tuple(g.shape) for g in got] == [(2, 3, 20, 20), (2, 3, 10, 10)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, atol=1e-3)
    # the bands sum back to the image: up(low) + band = image
    np.testing.assert_allclose((got[0] + S.pyr_up(got[1], (20, 20))).numpy(), x, atol=1e-3)


def test_a_one_dimensional_distance_by_hand():
    # two points each, on one direction: sorted {0, 1} vs {1, 2} differ by 1 everywhere
    a, b = torch.tensor([[1.0], [0.0]]), torch.tensor([[2.0], [1.0]])
    assert S.sliced_wasserstein(a, b, torch.ones(2, 1, 3)) == pytest.approx(1.0)
    # {0, 4} vs {1, 2}: |0 - 1| and |4 - 2|, mean 1.5 (unsorted, |0 - 2| and |4 - 1|: 2.5); on
    # direction -1 the same
    a, b = torch.tensor([[0.0], [4.0]]), torch.tensor([[2.0], [1.0]])
    assert S.sliced_wasserstein(a, b, torch.ones(1, 1, 2)) == pytest.approx(1.5)
    assert S.sliced_wasserstein(a, b, -torch.ones(1, 1, 2)) == pytest.approx(1.5)


def test_descriptors_are_normalised_as_the_paper_over_few_patches():
    # 5 patches: the population std (the reference's np.std) and the sample std differ by 0.2%
    level = _images(2, 3, 16, 4) * 50
    images, ys, xs = (
        torch.tensor([0, 1, 1, 0, 1]),
        torch.tensor([0, 3, 9, 5, 1]),
        torch.tensor([9, 0, 4, 2, 8]),
    )
    got = S.descriptors(level, images, ys, xs)
    want = np_descriptors(level.double().numpy(), images.numpy(), ys.numpy(), xs.numpy())
    assert got.shape == (5, 3 * 49)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("size", "levels"), [(16, 1), (28, 1), (31, 1), (32, 2), (64, 3), (128, 4), (256, 5), (1024, 5)]
)
def test_levels_stop_at_16_px(size, levels):
    assert S.levels_for(size) == levels


def test_registry_reports_every_level():
    from ganrf.metrics.spec import METRICS, SWD_LEVELS, swd_span

    assert SWD_LEVELS == S.MAX_LEVELS
    assert [k for k in METRICS if k.startswith("metric/swd_")] == [
        f"metric/swd_l{k}" for k in range(S.MAX_LEVELS)
    ]
    assert "28 px structure" in METRICS["metric/swd_l2"].label
    assert swd_span(2) == 28


def _real_crops(n, seed, size=32):
    from ganrf.data.photo import photo_crops

    x = photo_crops("astronaut", n, size, photo_size=128, channels=3, seed=seed)
    return x.float() / 127.5 - 1


def test_zero_for_identical_sets_and_the_same_for_the_same_seed():
    x = _real_crops(40, 0)
    assert S.swd(x, x.clone()) == {"l0": 0.0, "l1": 0.0, "mean": 0.0}
    y = _real_crops(40, 1)
    assert S.swd(x, y, seed=3) == S.swd(x, y, seed=3)
    assert S.swd(x, y, seed=3)["mean"] > 0


def test_grows_with_blur_and_with_noise_on_real_crops():
    import torchvision.transforms.functional as TF

    real, other = _real_crops(64, 0), _real_crops(64, 1)
    blurred = [S.swd(real, TF.gaussian_blur(other, 9, s))["mean"] for s in (0.01, 0.7, 1.2, 2.0)]
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(other.shape, generator=g)
    noisy = [S.swd(real, (other + s * noise).clamp(-1, 1))["mean"] for s in (0.0, 0.05, 0.15, 0.4)]
    assert blurred == sorted(blurred) and blurred[-1] > 2 * blurred[0]
    assert noisy == sorted(noisy) and noisy[-1] > 2 * noisy[0]
    # blur takes away fine structure first: the finest level moves most
    b = S.swd(real, TF.gaussian_blur(other, 9, 1.2))
    assert b["l0"] > b["l1"]


def test_refuses_sets_it_cannot_compare():
    with pytest.raises(S.SWDError, match="one image shape"):
        S.swd(torch.zeros(4, 3, 32, 32), torch.zeros(4, 1, 32, 32))
    with pytest.raises(S.SWDError, match="at least 16 px"):
        S.swd(torch.zeros(4, 1, 15, 15), torch.zeros(4, 1, 15, 15))
    with pytest.raises(S.SWDError, match="at least one image"):
        S.swd(torch.zeros(0, 1, 16, 16), torch.zeros(4, 1, 16, 16))


def test_a_blank_set_scores_without_nan():
    blank = torch.zeros(8, 1, 16, 16)
    got = S.swd(blank, _real_crops(8, 0, 16)[:, :1])
    assert np.isfinite(got["mean"]) and got["mean"] > 0
