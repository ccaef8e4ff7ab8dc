import math

import pytest
import torch

from ganrf.training import losses


def test_ns_losses_known_values():
    zero = torch.zeros(4, 1)
    assert losses.ns_d(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert losses.ns_g(zero).item() == pytest.approx(math.log(2))
    big = torch.full((4, 1), 20.0)
    assert losses.ns_d(big, -big).item() == pytest.approx(0, abs=1e-6)


def test_hinge_and_wgan_values():
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-2.0], [0.5]])
    assert losses.hinge_d(real, fake).item() == pytest.approx((0 + 1) / 2 + (0 + 1.5) / 2)
    assert losses.hinge_g(fake).item() == pytest.approx(0.75)
    assert losses.wgan_d(real, fake).item() == pytest.approx(-0.75 - 1.0)


def test_patch_logits_average_per_location():
    patch = torch.zeros(2, 1, 7, 7)
    patch[0, 0, 0, 0] = 49.0  # one location; the mean over 2*49 locations is 0.5
    assert losses.wgan_g(patch).item() == pytest.approx(-0.5)


def test_gradient_penalty_zero_for_unit_gradient_critic():
    # D(x) = sum(x * w) with ||w|| = 1 has gradient norm 1 everywhere: penalty 0.
    w = torch.randn(1, 1, 4, 4)
    w = w / w.norm()
    pen = losses.gradient_penalty(
        lambda x: (x * w).flatten(1).sum(1, keepdim=True),
        torch.randn(8, 1, 4, 4),
        torch.randn(8, 1, 4, 4),
    )
    assert pen.item() == pytest.approx(0, abs=1e-10)
    pen2 = losses.gradient_penalty(
        lambda x: 3 * (x * w).flatten(1).sum(1, keepdim=True),
        torch.randn(8, 1, 4, 4),
        torch.randn(8, 1, 4, 4),
    )
    assert pen2.item() == pytest.approx(4.0)  # (3 - 1)^2


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'lsgan'"):
        losses.get("lsgan")
