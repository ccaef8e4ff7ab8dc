"""Packable spectral norm: PyTorch's values, and per-member power iterations under vmap."""

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from ganrf.models.spectral import spectral_norm


@pytest.mark.parametrize("make", [lambda: nn.Conv2d(3, 8, 3), lambda: nn.Linear(12, 5)])
def test_same_values_and_state_as_pytorch(make):
    torch.manual_seed(0)
    ours = spectral_norm(make())
    torch.manual_seed(0)
    theirs = torch_spectral_norm(make())
    x = torch.randn(4, *((3, 8, 8) if isinstance(ours, nn.Conv2d) else (12,)))
    for _ in range(3):  # each training forward runs one power iteration on both
        assert torch.equal(ours(x), theirs(x))
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert all(torch.equal(v, theirs.state_dict()[k]) for k, v in ours.state_dict().items())
    w = ours.weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, 2).item() == pytest.approx(1.0, abs=0.05)


def test_a_vmapped_stack_iterates_each_member_as_alone():
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        members.append(nn.Sequential(spectral_norm(nn.Conv2d(2, 4, 3))))  # one class each
    alone = copy.deepcopy(members)
    params, buffers = stack_module_state(members)
    template = copy.deepcopy(members[0]).to("meta")
    x = torch.randn(3, 5, 2, 6, 6)
    u = "0.parametrizations.weight.0._u"
    before = buffers[u].clone()

    def call(p, b, xi):
        return functional_call(template, (p, b), (xi,))

    for _ in range(2):  # the buffers' updates land in each member's row of the stack
        out = vmap(call)(params, buffers, x)
        for i, m in enumerate(alone):
            assert torch.allclose(out[i], m(x[i]), atol=1e-6)
    assert not torch.equal(buffers[u], before)  # the iteration wrote into the stack
    for i, m in enumerate(alone):
        assert torch.allclose(buffers[u][i], m.state_dict()[u], atol=1e-6)
    assert not torch.allclose(buffers[u][0], buffers[u][1])
