"""Tracing a module's graph: published shapes, each op family's rule, and what is refused."""

import contextlib
import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ganrf.design import receptive_field
from ganrf.design.rf import RFError
from ganrf.design.trace import trace_nodes


def nlayer_discriminator(input_nc=3, ndf=8, n_layers=3) -> nn.Module:
    """pix2pix's ``NLayerDiscriminator`` as junyanz/pytorch-CycleGAN-and-pix2pix
    (models/networks.py) builds it: 4x4 convs, padding 1, strides 2 x n_layers then 1, 1."""
    kw, padw = 4, 1
    sequence = [nn.Conv2d(input_nc, ndf, kw, 2, padw), nn.LeakyReLU(0.2, True)]
    nf_mult = 1
    for n in range(1, n_layers):
        nf_mult_prev, nf_mult = nf_mult, min(2**n, 8)
        sequence += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kw, 2, padw, bias=False),
            nn.BatchNorm2d(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
        ]
    nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, 8)
    sequence += [
        nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kw, 1, padw, bias=False),
        nn.BatchNorm2d(ndf * nf_mult),
        nn.LeakyReLU(0.2, True),
    ]
    sequence += [nn.Conv2d(ndf * nf_mult, 1, kw, 1, padw)]

    class NLayerDiscriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(*sequence)

        def forward(self, input):
            return self.model(input)

    return NLayerDiscriminator()


def test_pix2pix_patchgan_n_layers_3_sees_70():
    """Isola et al. 2017: the 70x70 PatchGAN. Backwards from 1: 4, 7, 16, 34, 70; effective
    padding 1 + 2 + 4 + 8 + 8 = 23; 256 -> 128 -> 64 -> 32 -> 31 -> 30 decisions a side."""
    rep = receptive_field(nlayer_discriminator().eval(), (3, 256, 256))
    assert [r.rf[0] for r in rep.layers] == [4, 10, 22, 46, 70]
    assert (rep.size, rep.stride, rep.padding) == ((70, 70), (8, 8), (23, 23))
    assert (rep.decision_rf, rep.output_grid) == ((70, 70), (30, 30))


def test_torchvision_resnet18_sees_435():
    """ResNet-18 (He et al. 2016) by Araujo et al.'s recurrence (Distill 2019), along its longest
    path: conv7s2 7; maxpool3s2 7 + 2*2 = 11; layer1's four 3x3 at jump 4: 11 + 4*8 = 43; layer2
    (jump 4 then 8): 43 + 8 + 3*16 = 99; layer3: 99 + 16 + 3*32 = 211; layer4: 211 + 32 + 3*64 =
    435, at effective stride 32. The 1x1 stride-2 shortcuts see less (43, 99, 211 at their adds),
    inside the main path's window, so each add keeps the main path's rf. Effective padding
    3 + 2 + 4*4 + (4 + 3*8) + (8 + 3*16) + (16 + 3*32) = 217. The global average pool makes the
    decision whole."""
    rep = receptive_field(torchvision.models.resnet18().eval(), (3, 224, 224))
    assert (rep.size, rep.stride, rep.padding) == ((435, 435), (32, 32), (217, 217))
    adds = [r.rf[0] for r in rep.layers if r.layer == "add"]
    assert adds == [27, 43, 67, 99, 147, 211, 307, 435]
    shortcuts = [r.rf[0] for r in rep.layers if "downsample" in r.module]
    assert shortcuts == [43, 99, 211]
    assert (
        rep.decision_whole and rep.decision_reason == "global pooling (avgpool (AdaptiveAvgPool2d))"
    )


class SNGANBlock(nn.Module):
    """SNGAN's (Miyato et al. 2018) discriminator block: ReLU-conv3-ReLU-conv3 (+ avgpool2),
    shortcut 1x1 conv (+ avgpool2) when it downsamples or changes channels, identity otherwise;
    the first block ("optimized") has no leading ReLU and pools before its shortcut conv."""

    def __init__(self, cin, cout, down, first=False):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.sc = nn.Conv2d(cin, cout, 1) if down or cin != cout else None
        self.down, self.first = down, first

    def forward(self, x):
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.sc(F.avg_pool2d(x, 2))
        elif self.sc is not None:
            s = self.sc(x)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class SNGANDiscriminator(nn.Module):
    def __init__(self, ch=8):
        super().__init__()
        self.blocks = nn.Sequential(
            SNGANBlock(3, ch, True, first=True),
            SNGANBlock(ch, ch, True),
            SNGANBlock(ch, ch, False),
            SNGANBlock(ch, ch, False),
        )
        self.linear = nn.Linear(ch, 1)

    def forward(self, x):
        h = F.relu(self.blocks(x))
        return self.linear(torch.sum(h, dim=(2, 3)))  # the global-sum head


def test_sngan_resnet_discriminator_by_hand():
    """SNGAN's CIFAR (32x32) D. Windows of output position o, in input pixels:

    * block 1: conv3, conv3 see o-2..o+2; avgpool2 reads 2o, 2o+1: 2o-2..2o+3, rf 6 at jump 2;
      the shortcut (avgpool2, 1x1) sees 2o..2o+1, inside: the add keeps 6 (padding 2);
    * block 2 at jump 2: each conv3 adds 2*2, 2o-6..2o+7 (rf 14); avgpool2: 4o-6..4o+9, rf 16 at
      jump 4; shortcut 1x1 + avgpool 4o-2..4o+5, inside;
    * blocks 3 and 4 at jump 4: each conv3 adds 8, so 32 and 48, identity shortcuts inside.

    So rf 48, effective stride 4, effective padding 22, on the 8x8 last map; the global mean
    makes the decision the whole 32x32 image."""
    rep = receptive_field(SNGANDiscriminator(), (3, 32, 32))
    adds = [(r.rf[0], r.jump[0]) for r in rep.layers if r.layer == "add"]
    assert adds == [(6, 2), (16, 4), (32, 4), (48, 4)]
    assert (rep.size, rep.stride, rep.padding, rep.feature_size) == (
        (48, 48),
        (4, 4),
        (22, 22),
        (8, 8),
    )
    assert rep.decision_whole and rep.decision_rf == (32, 32)
    assert rep.decision_reason == "global pooling (sum_1 (sum))"  # fx renames the builtin
    assert rep.layers[-1].cells(True)[-1] == "whole"


def test_concat_branches_union_and_channel_slice_refused():
    class Inception(nn.Module):
        def __init__(self, slice_after=False):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 2, 5, padding=2)
            self.mix = nn.Conv2d(4, 1, 1)
            self.slice_after = slice_after

        def forward(self, x):
            h = torch.cat([self.a(x), self.b(x)], dim=1)
            return self.mix(h[:, :2] if self.slice_after else h)

    rep = receptive_field(Inception(), (1, 16, 16))
    assert [(r.layer, r.rf[0]) for r in rep.layers] == [
        ("conv3", 3),
        ("conv5", 5),
        ("cat", 5),
        ("conv1", 5),
    ]
    with pytest.raises(RFError, match=r"getitem \(getitem\) takes some channels of a concat"):
        receptive_field(Inception(slice_after=True), (1, 16, 16))


def test_mul_gate_and_asymmetric_pad_offsets():
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate, self.value = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)

        def forward(self, x):
            g = torch.sigmoid(self.gate(F.pad(x, (2, 0, 2, 0))))  # sees o-2..o
            return g * self.value(F.pad(x, (0, 2, 0, 2)))  # sees o..o+2

    rep = receptive_field(Gated(), (1, 16, 16))
    assert [r.layer for r in rep.layers] == ["pad", "conv3p0", "pad", "conv3p0", "mul"]
    assert (rep.size, rep.padding) == ((5, 5), (2, 2))  # o-2..o+2: the union, not either branch


def test_upsampling_gives_an_rf_range():
    # conv3 sees 3; nearest x2; a 4x4 'same' conv (1 before, 2 after) at output 2m reads
    # upsampled 2m-1..2m+2 = conv positions m-1..m+1 (rf 5), at 2m+1 reads m..m+1 (rf 4).
    m = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(2, 1, 4, padding="same"),
    )
    rep = receptive_field(m, (1, 16, 16))
    assert [r.cells(True)[-1] for r in rep.layers] == ["3", "3", "4-5"]
    assert rep.size == (5, 5) and rep.stride == (0.5, 0.5) and rep.output_grid == (32, 32)
    assert "the rf depends on the output position: 4-5x4-5" in rep.notes[0]


def test_uneven_adaptive_pool_and_global_pool():
    # 5 -> 3: PyTorch pools [0, 2), [1, 4), [3, 5): rf 2, 3, 2
    rep = receptive_field(nn.Sequential(nn.AdaptiveAvgPool2d(3)), (1, 5, 5))
    assert rep.layers[0].rf_min == (2, 2) and rep.size == (3, 3)
    rep = receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveMaxPool2d(1)), (1, 9, 9))
    assert rep.size == (3, 3) and rep.decision_rf == (9, 9) and rep.output_grid == (1, 1)


class SelfAttention(nn.Module):
    """SAGAN's (Zhang et al. 2019) attention block."""

    def __init__(self, ch):
        super().__init__()
        self.q, self.k, self.v = (nn.Conv2d(ch, c, 1) for c in (ch // 2, ch // 2, ch))

    def forward(self, x):
        b, c, h, w = x.size()
        q = self.q(x).view(b, -1, h * w).permute(0, 2, 1)
        k = self.k(x).view(b, -1, h * w)
        attn = torch.softmax(torch.bmm(q, k), dim=-1)
        out = torch.bmm(self.v(x).view(b, c, h * w), attn.permute(0, 2, 1))
        return x + out.view(b, c, h, w)


def test_self_attention_is_global_and_says_so():
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), SelfAttention(4), nn.Conv2d(4, 1, 3))
    rep = receptive_field(m, (1, 12, 12))
    assert rep.decision_whole and rep.decision_rf == (12, 12) and rep.output_grid == (10, 10)
    assert rep.decision_reason.startswith("self-attention (bmm (bmm))")
    assert "global" in rep.decision_reason
    # the map before attention still has its rf
    assert rep.size == (3, 3)


def test_flatten_dense_head_is_whole():
    m = nn.Sequential(nn.Conv2d(1, 2, 5, 2, 2), nn.Flatten(), nn.Linear(2 * 7 * 7, 1))
    rep = receptive_field(m, (1, 14, 14))
    assert rep.size == (5, 5) and rep.decision_rf == (14, 14)
    assert rep.decision_reason == "dense layer over the flattened map"
    assert [r.layer for r in rep.layers] == ["conv5s2", "dense"]


def test_data_dependent_control_flow_is_one_sentence():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            if x.mean() > 0:
                return self.a(x)
            return x

    with pytest.raises(RFError) as err:
        receptive_field(Branchy(), (1, 8, 8))
    text = str(err.value)
    assert text.startswith("torch.fx cannot trace Branchy at test_trace.py:")
    assert "in forward: `if x.mean() > 0:`" in text and "\n" not in text
    assert "make the branch depend on a Python attribute fixed at construction" in text


def test_an_op_without_a_rule_is_named_not_guessed():
    class Rolled(nn.Module):
        def forward(self, x):
            return torch.roll(x, 1, dims=2)

    with pytest.raises(RFError) as err:
        receptive_field(Rolled(), (1, 8, 8))
    text = str(err.value)
    assert text.startswith("roll (roll) at test_trace.py:")
    assert "has no rf rule" in text and "add a rule for it there" in text
    with pytest.raises(RFError, match=r"^1 \(PixelShuffle\) has no rf rule"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 4, 3), nn.PixelShuffle(2)), (1, 8, 8))


def test_branches_at_different_strides_are_refused():
    class Skewed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3, stride=2, padding=1)  # 8 -> 4, jump 2

        def forward(self, x):
            return self.a(x) + F.adaptive_avg_pool2d(x[:, :, :4, :4], 4)  # jump 1

    with pytest.raises(RFError, match="index|different rates"):
        receptive_field(Skewed(), (1, 8, 8))


def test_a_map_that_vanishes_is_one_sentence():
    with pytest.raises(RFError, match=r"does not run on a \(1, 4, 4\) input"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 5)), (1, 4, 4))


def test_the_docs_residual_example_prints_its_table():
    readme = (Path(__file__).resolve().parents[1] / "docs" / "rf-tool.md").read_text()
    start = readme.index("```python\nimport torch.nn.functional as F")
    code = readme[start + len("```python\n") : readme.index("```", start + 10)]
    console = readme.index("```console\n", start + 10) + len("```console\n")
    printed = readme[console : readme.index("```", console)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert out.getvalue() == printed
    assert "rf 16, effective stride 4, effective padding 6" in printed


def test_every_node_has_its_rf_and_groups_do_not_change_it():
    m = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, groups=2),
        nn.LeakyReLU(0.2),
        nn.Conv2d(4, 4, 5, padding=2, groups=4),  # depthwise
    )
    nodes, out, _ = trace_nodes(m, (2, 16, 16))
    assert [(n.name, n.layer, n.value.h.size) for n in nodes] == [
        ("0 (Conv2d)", "conv3", 3),
        ("1 (LeakyReLU)", "", 3),
        ("2 (Conv2d)", "conv5", 7),
    ]
    assert out.h.size == 7


def test_an_optional_second_input_is_one_sentence():
    # fx traces `y is None` as False (y is a proxy), so the graph multiplies by y; run on the
    # image alone it fails, and says what to do.
    class Projection(nn.Module):  # a projection D's labels
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3)

        def forward(self, x, y=None):
            return self.a(x) if y is None else self.a(x) * y

    with pytest.raises(RFError) as err:
        receptive_field(Projection(), (1, 8, 8))
    assert str(err.value).startswith("Projection does not run on a (1, 8, 8) input (")
    assert "While executing %mul" in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).endswith(
        "wrap a model with more inputs in one that takes the image alone"
    )
