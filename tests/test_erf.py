"""Effective receptive fields: radii on hand-made maps, a conv with known weights, and the conv
stack's ERF against the theoretical rf for untrained and trained discriminators of both heads."""

import pytest
import torch

from ganrf.data import make_synthetic, to_float
from ganrf.design.designs import DiscriminatorDesign, onelayer
from ganrf.metrics import conv_erf, decision_erf, erf_radii
from ganrf.metrics.evaluation import erf_metrics
from ganrf.models import build_discriminator
from ganrf.training.checkpoint import load_checkpoint
from ganrf.training.loop import train
from tests.test_metric_values import on_one_device


def synthetic(n, seed):
    return to_float(make_synthetic(n, seed=seed)[0])


def ring_map(masses, size=9, center=4):
    """A map whose Chebyshev ring r around ``center`` holds ``masses[r]``, spread evenly."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    ring = torch.maximum((yy - center).abs(), (xx - center).abs())
    m = torch.zeros(size, size)
    for r, mass in enumerate(masses):
        m[ring == r] = mass / int((ring == r).sum())
    return m


def test_radii_of_a_hand_made_map():
    m = ring_map([0.40, 0.20, 0.30, 0.10])  # cumulative 0.4, 0.6, 0.9, 1.0
    assert erf_radii(m, (4.0, 4.0)).tolist() == [1.0, 3.0]
    assert erf_radii(m, (4.0, 4.0), (0.3, 0.55, 0.85, 1.0)).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert erf_radii(m * 7.5, (4.0, 4.0)).tolist() == [1.0, 3.0]  # unnormalised: same radii
    assert erf_radii(m * 0.25, (4.0, 4.0)).tolist() == [1.0, 3.0]  # a mass below 1 too
    # off-centre: a point mass at (6, 2) is 2 (Chebyshev) from a centre at (4, 3)
    point = torch.zeros(9, 9)
    point[6, 2] = 1
    assert erf_radii(point, (4.0, 3.0)).tolist() == [2.0, 2.0]
    # a half-pixel centre (an even-size rf): the 2x2 block around (3.5, 3.5) is radius 0.5
    block = torch.zeros(8, 8)
    block[3:5, 3:5] = 1
    assert erf_radii(block, (3.5, 3.5)).tolist() == [0.5, 0.5]


def test_radii_stay_on_the_maps_device():
    m = torch.rand(28, 28, device="meta")
    radii, mixed = on_one_device(erf_radii, m, (14.0, 14.0))
    assert radii.device.type == "meta" and mixed == []


@pytest.mark.parametrize("head", ["image", "patch"])
def test_conv_erf_of_a_conv_with_known_weights(head):
    """Positive inputs, positive weights: every unit linear, the gradient is the kernel itself."""
    design = onelayer(7, head=head)
    d = build_discriminator(design)
    kernel = torch.zeros(7, 7)
    kernel[2:5, 2:5] = 1.0  # ring 1: 8
    kernel[3, 3] = 12.0  # ring 0: 12
    kernel[0, :] = kernel[-1, :] = kernel[:, 0] = kernel[:, -1] = 0.25  # ring 3: 6, ring 2: 0
    with torch.no_grad():
        conv = d.features[0]
        conv.weight.copy_(kernel.expand_as(conv.weight))
        conv.bias.zero_()
    real = 0.5 + 0.5 * torch.rand(4, 1, 28, 28)
    erf = conv_erf(d, real, design)
    assert erf.center == (14.0, 14.0)
    # mass 12/26 = 0.46 in ring 0, 20/26 = 0.77 within 1, 0.77 within 2, 1 within 3
    assert (erf.radius50, erf.radius95, erf.size50, erf.size95) == (1.0, 3.0, 3.0, 7.0)
    want = torch.zeros(28, 28)
    want[11:18, 11:18] = kernel / kernel.sum()
    torch.testing.assert_close(erf.map, want)
    assert erf_metrics({"conv": erf})["erf/conv_size95"] == 7.0


@pytest.mark.parametrize("head", ["image", "patch"])
def test_conv_erf_of_a_stride_2_stack_with_box_kernels(head):
    """The notes' conv5s2,conv5s2 with 5x5 box kernels on positive inputs (every unit linear).
    Counted by hand: the central unit (3, 3) of the 7x7 map reads layer-1 units 4..8 (stride 2,
    padding 2), unit u reads pixels 2u-2..2u+2, so pixel r carries weight #{u in 4..8: |r-2u| <= 2}:
    1,1,2,2,3,2,3,2,3,2,2,1,1 at r = 6..18, centred on 12 = 3 * 4 (jump) - 6 (padding) + 6."""
    design = DiscriminatorDesign.from_spec("conv5s2,conv5s2", head=head, dropout=0.0)
    d = build_discriminator(design)
    first, second = [m for m in d.features.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        first.weight.fill_(1.0 / 25)
        # summed over both layers' channels the gradient's mass is 1/4; the map's is still 1
        second.weight.fill_(1.0 / (25 * 4 * second.in_channels * second.out_channels))
        first.bias.zero_()
        second.bias.zero_()
    w = torch.zeros(28, dtype=torch.float64)
    for r in range(28):
        w[r] = sum(abs(r - 2 * u) <= 2 for u in range(4, 9))
    assert w[6:19].tolist() == [1, 1, 2, 2, 3, 2, 3, 2, 3, 2, 2, 1, 1] and w.sum() == 25
    want = torch.outer(w, w) / w.sum() ** 2
    erf = conv_erf(d, 0.5 + 0.5 * torch.rand(3, 1, 28, 28), design)
    assert erf.center == (12.0, 12.0)
    torch.testing.assert_close(erf.map.double(), want)
    # Chebyshev square of radius r around pixel 12: its rows 12±r hold 3, 7, 13, 17, 21, 23, 25 of
    # the 25 (r = 0..6), so its mass is that squared over 625: 0.46 at r = 3, 0.71 at 4, 0.85
    # at 5, 1 at 6
    assert (erf.radius50, erf.radius95) == (4.0, 6.0)


def _trained_discriminator(k, head, tmp_path):
    cfg = {
        "data.dataset": "synthetic",
        "data.synthetic_size": 64,
        "schedule.batch_size": 16,
        "schedule.steps": 15,
        "g.width": 0.0625,
        "d.width": 0.25,
        "d.dropout": 0.0,
        "d.layers": f"conv{k}",
        "d.head": head,
        "eval.metrics": False,
        "device": "cpu",
    }
    kept = {}

    def report(metrics, ckpt):
        if ckpt is not None:
            kept["d"] = load_checkpoint(ckpt)["pack"]["d"][0]  # a plain trial is a pack of one

    train(cfg, report, out_dir=tmp_path)
    design = onelayer(k, head=head).scaled(0.25)
    d = build_discriminator(design)
    d.load_state_dict(kept["d"])
    return d, design


@pytest.mark.parametrize("head", ["image", "patch"])
def test_conv_erf_of_one_conv_lies_within_its_rf_and_grows_with_it(head):
    """Done criterion of the issue: k - 2 <= conv-stack ERF (95%) <= k, untrained and trained."""
    real = synthetic(32, seed=1)
    sizes = {}
    for k in (1, 3, 5, 7, 13):
        torch.manual_seed(k)
        design = onelayer(k, head=head)
        erf = conv_erf(build_discriminator(design), real, design)
        assert k - 2 <= erf.size95 <= k, (k, erf.size95)
        assert erf.size50 <= erf.size95
        outside = erf.map.clone()
        lo, hi = 14 - (k - 1) // 2, 14 + k // 2 + 1
        outside[lo:hi, lo:hi] = 0
        assert outside.sum() == 0  # not one grain of gradient outside the theoretical rf
        sizes[k] = erf.size95
    assert list(sizes.values()) == sorted(sizes.values()) and sizes[13] > sizes[3] > sizes[1]


@pytest.mark.parametrize("head", ["image", "patch"])
def test_conv_erf_of_one_trained_conv_lies_within_its_rf(head, tmp_path):
    real = synthetic(32, seed=1)
    for k in (3, 13):
        d, design = _trained_discriminator(k, head, tmp_path / f"k{k}")
        erf = conv_erf(d, real, design)
        assert k - 2 <= erf.size95 <= k, (k, erf.size95)


def test_decision_gradient_of_the_dense_head_spreads_beyond_the_conv_rf():
    design = onelayer(3)  # conv rf 3, dense head: the decision sees the whole image
    torch.manual_seed(0)
    d, real = build_discriminator(design), synthetic(32, seed=1)
    dec, conv = decision_erf(d, real, design), conv_erf(d, real, design)
    assert dec.center == (13.5, 13.5) and dec.size95 > 9
    assert conv.center == (14.0, 14.0) and conv.size95 <= 3


def test_patch_head_decision_gradient_stays_in_the_rf():
    design = onelayer(5, head="patch")
    torch.manual_seed(0)
    dec = decision_erf(build_discriminator(design), synthetic(16, seed=1), design)
    assert dec.center == (14.0, 14.0) and 3 <= dec.size95 <= 5
