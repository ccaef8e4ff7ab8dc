"""rf arithmetic: the notes' worked example, published values, and what is refused."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from ganrf.design import receptive_field
from ganrf.design.rf import LayerSpec, RFError, conv_padding, parse_specs

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter on this checkout; the timeout only guards a hang."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_rf_designs_and_config_import_no_torch():
    proc = _python(
        "import sys, ganrf.config, ganrf.design, ganrf.design.designs, ganrf.design.search\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "rep = ganrf.design.receptive_field('conv5s2,conv5s2,dense', (1, 28, 28))\n"
        "d = ganrf.design.search.solve(7, 3)[0]\n"
        "assert (rep.size, d.rf) == ((13, 13), 7) and 'torch' not in sys.modules\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_module_still_traced_after_a_torch_free_import():
    proc = _python(
        "import sys, ganrf.design\n"
        "assert 'ganrf.design.trace' not in sys.modules\n"
        "from torch import nn\n"
        "m = nn.Sequential(nn.Conv2d(1, 4, 5, 2, 2), nn.Conv2d(4, 1, 5, 2, 2))\n"
        "print(ganrf.design.receptive_field(m, (1, 28, 28)).size)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(13, 13)"


@pytest.mark.parametrize(
    "kernel, stride, dilation, expected",
    [
        (1, 1, 1, (0, 0)),
        (3, 1, 1, (1, 1)),
        (4, 1, 1, (1, 2)),  # PyTorch's 'same': total // 2 before, the rest after
        (4, 1, 3, (4, 5)),  # total d(k-1) = 9
        (3, 1, 2, (2, 2)),
        (5, 2, 1, (2, 2)),  # the notes' conv5s2: 28 -> 14 -> 7
        (4, 2, 1, (1, 1)),  # d(k-1)//2 each side at stride 2
        (3, 3, 2, (2, 2)),
    ],
)
def test_conv_padding_rule(kernel, stride, dilation, expected):
    assert conv_padding(kernel, stride, dilation) == expected
    (spec,), _ = parse_specs(f"conv{kernel}s{stride}d{dilation}")
    assert (spec.pad_begin[0], spec.pad_end[0]) == expected


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_conv_padding_is_pytorch_same_at_stride_1(kernel, dilation):
    # PyTorch's own padding='same' against zeros placed by hand where conv_padding says.
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, kernel, padding="same", dilation=dilation, bias=False)
    x = torch.randn(1, 1, 9, 9)
    before, after = conv_padding(kernel, 1, dilation)
    by_hand = nn.functional.conv2d(
        nn.functional.pad(x, (before, after, before, after)), conv.weight, dilation=dilation
    )
    assert torch.allclose(conv(x), by_hand, atol=1e-6)
    traced = receptive_field(nn.Sequential(conv), (1, 9, 9)).layers[0]
    assert traced.padding == (before, before)


def test_notes_worked_example_rf_13():
    # shared/DESIGN.md: conv5/s2 -> conv5/s2 has rf (1-1)*2+5 = 5, then (5-1)*2+5 = 13.
    rep = receptive_field("conv5s2,conv5s2", (1, 28, 28))
    assert [r.rf for r in rep.layers] == [(5, 5), (13, 13)]
    assert [r.out_size for r in rep.layers] == [(14, 14), (7, 7)]  # 28 -> 14 -> 7 as the notes
    assert rep.size == (13, 13)
    assert rep.stride == (4, 4)
    assert rep.padding == (6, 6)  # 2 + 2 * 2


def test_notes_table_ends_in_13():
    text = receptive_field("conv5s2,conv5s2,dense", (1, 28, 28)).table()
    rows = [line for line in text.splitlines() if line.startswith(("1 ", "2 "))]
    assert rows[0].split()[-2:] == ["14x14", "5"]
    assert rows[1].split()[-2:] == ["7x7", "13"]
    assert "decision rf 28 (dense layer over the flattened map)" in text


NOTES_TABLE = """\
#  layer    kernel  stride  pad  dilation  feature map  rf
-  -------  ------  ------  ---  --------  -----------  --
   input                                   28x28x1      1
1  conv5s2  5       2       2    1         14x14        5
2  conv5s2  5       2       2    1         7x7          13

rf 13, effective stride 4, effective padding 6
decision rf 28 (dense layer over the flattened map), output grid 1x1"""


def test_table_names_layers_by_what_they_are_and_matches_the_docs():
    assert receptive_field("conv5s2,conv5s2,dense", (1, 28, 28)).table() == NOTES_TABLE
    readme = (ROOT / "docs" / "rf-tool.md").read_text()
    assert '$ ganrf rf "conv5s2,conv5s2,dense" --input 28\n' + NOTES_TABLE + "\n```" in readme
    rep = receptive_field("conv3,conv3d2,maxpool2,conv4s2p1,conv3x5,avgpool3s1", (1, 28, 28))
    assert [r.layer for r in rep.layers] == [
        "conv3",
        "conv3d2",
        "maxpool2",
        "conv4s2",  # p1 is conv4s2's default padding
        "conv3x5",
        "avgpool3s1",
    ]
    assert [r.index for r in rep.layers] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "token",
    [
        "conv7",
        "conv5s2",
        "conv3d2",
        "conv4p1",
        "conv5s2p0",
        "conv3x5",
        "maxpool2",
        "avgpool3s1",
        "maxpool3s2p1",
        "conv3s2d2",
    ],
)
def test_layer_token_reads_back_to_the_same_layer(token):
    (spec,), _ = parse_specs(token)
    assert spec.token == token
    assert parse_specs(spec.token)[0] == [spec]


def test_traced_table_names_each_module():
    m = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(), nn.MaxPool2d(2))
    rep = receptive_field(m, (1, 16, 16))
    assert [(r.layer, r.module) for r in rep.layers] == [
        ("conv4s2", "0 (Conv2d)"),
        ("maxpool2", "2 (MaxPool2d)"),
    ]
    header, _, _, first, second = rep.table().splitlines()[:5]
    assert header.split()[:3] == ["#", "layer", "module"]
    assert first.split()[:4] == ["1", "conv4s2", "0", "(Conv2d)"]
    assert second.split()[:4] == ["2", "maxpool2", "2", "(MaxPool2d)"]


@pytest.mark.parametrize(
    "layers, rf",
    [
        ("conv7", 7),
        ("conv4,conv4", 7),
        ("conv3,conv3,conv3", 7),
        ("conv5,conv3", 7),
        ("conv1", 1),
        ("conv28", 28),
    ],
)
def test_stride1_equivalent_stacks(layers, rf):
    rep = receptive_field(layers, (1, 28, 28), head="patch")
    assert rep.size == (rf, rf)
    assert rep.feature_size == (28, 28)  # 'same' padding keeps the map at stride 1
    assert rep.decision_rf == (rf, rf)


def test_dilation_uses_effective_kernel():
    # A 3x3 kernel at dilation d spans d*2+1; dilations 1, 2, 4 give 1 + 2*(1+2+4) = 15
    # (Yu & Koltun 2016, the context module's exponential dilation).
    rep = receptive_field("conv3,conv3d2,conv3d4", (1, 32, 32))
    assert [r.rf[0] for r in rep.layers] == [3, 7, 15]


def test_pooling_counts_like_a_layer():
    # conv3 -> maxpool2 -> conv3: 3, then 4, then 4 + 2*2 = 8
    rep = receptive_field("conv3,maxpool2,conv3", (1, 28, 28))
    assert [r.rf[0] for r in rep.layers] == [3, 4, 8]
    assert rep.stride == (2, 2)


def test_non_square_kernels_per_axis():
    rep = receptive_field("conv3x5,conv3x5s2", (1, 28, 28))
    assert rep.size == (5, 9)


def test_pix2pix_patchgan_published_rfs():
    # Isola et al. 2017 (pix2pix): n_layers=1 -> 16x16, n_layers=3 -> 70x70, 5 -> 286x286.
    def patchgan(n):
        layers, ch = [nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2)], 64
        for _ in range(1, n):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2)]
            ch *= 2
        layers += [nn.Conv2d(ch, ch * 2, 4, 1, 1), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(ch * 2, 1, 4, 1, 1)]
        return nn.Sequential(*layers).eval()

    assert receptive_field(patchgan(1), (3, 64, 64)).size == (16, 16)
    assert receptive_field(patchgan(3), (3, 256, 256)).size == (70, 70)
    assert receptive_field(patchgan(5), (3, 512, 512)).size == (286, 286)


def test_vgg16_and_alexnet_published_values():
    # Araujo et al., "Computing Receptive Fields of CNNs" (Distill 2019), Table 1: VGG-16 r=212,
    # S=32, P=90; AlexNet r=195, S=32.
    vgg = receptive_field(torchvision.models.vgg16().features, (3, 224, 224))
    assert (vgg.size, vgg.stride, vgg.padding) == ((212, 212), (32, 32), (90, 90))
    alex = receptive_field(torchvision.models.alexnet().features, (3, 224, 224))
    assert (alex.size, alex.stride) == ((195, 195), (32, 32))


def test_model_and_specs_agree_with_same_padding_even_kernel():
    m = nn.Sequential(
        nn.Conv2d(1, 4, 4, padding="same"), nn.ReLU(), nn.Conv2d(4, 1, 4, padding="same")
    )
    traced = receptive_field(m, (1, 28, 28))
    specs = receptive_field("conv4,conv4", (1, 28, 28))
    assert traced.size == specs.size == (7, 7)
    # 4x4 'same' pads 1 before, 2 after; P = 1 + 1*1 = 2: the first unit sees input -2..4 (7 px)
    assert traced.padding == specs.padding == (2, 2)
    assert [r.out_size for r in traced.layers] == [r.out_size for r in specs.layers]


def test_decision_rf_image_head_vs_patch_head():
    feats = [nn.Conv2d(1, 8, 5, 2, 2), nn.LeakyReLU(), nn.Conv2d(8, 8, 5, 2, 2), nn.LeakyReLU()]
    image = nn.Sequential(*feats, nn.Flatten(), nn.Linear(8 * 7 * 7, 1))
    patch = nn.Sequential(*feats, nn.Conv2d(8, 1, 1))
    ri, rp = receptive_field(image, (1, 28, 28)), receptive_field(patch, (1, 28, 28))
    assert ri.size == rp.size == (13, 13)
    assert ri.decision_rf == (28, 28) and ri.decision_whole and ri.output_grid == (1, 1)
    assert rp.decision_rf == (13, 13) and not rp.decision_whole and rp.output_grid == (7, 7)


def test_global_pool_makes_decision_whole():
    m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    rep = receptive_field(m, (1, 16, 16))
    assert rep.size == (3, 3) and rep.decision_rf == (16, 16)
    assert "global pooling" in rep.decision_reason


def test_batchnorm_training_mode_mixes_everything_eval_does_not():
    m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 1, 1))
    train = receptive_field(m.train(), (1, 16, 16))
    assert train.decision_rf == (16, 16) and train.mixes_batch and train.notes
    ev = receptive_field(m.eval(), (1, 16, 16))
    assert ev.decision_rf == (3, 3) and not ev.mixes_batch


def test_tracing_leaves_batchnorm_statistics_untouched():
    bn = nn.BatchNorm2d(8)
    m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), bn, nn.Conv2d(8, 1, 1))
    receptive_field(m, (1, 16, 16))
    assert int(bn.num_batches_tracked) == 0
    assert torch.equal(bn.running_mean, torch.zeros(8))


def test_custom_module_found_by_running_it():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)) * 2.0)

    rep = receptive_field(Custom(), (1, 28, 28))
    assert rep.size == (5, 5) and rep.feature_size == (14, 14)


def test_residual_branch_is_followed():
    # Once refused ("the conv path branches"); now the add is the union of both branches:
    # h = conv3 sees 3, b(h) = conv5 on top sees 3 + 4 = 7, and 7 contains h's 3 (both centred).
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3, padding=1)
            self.b = nn.Conv2d(1, 1, 5, padding=2)

        def forward(self, x):
            h = self.a(x)
            return self.b(h) + h

    rep = receptive_field(Res(), (1, 8, 8))
    assert [(r.layer, r.module, r.rf) for r in rep.layers] == [
        ("conv3", "a (Conv2d)", (3, 3)),
        ("conv5", "b (Conv2d)", (7, 7)),
        ("add", "add (add)", (7, 7)),
    ]
    assert (rep.size, rep.padding, rep.decision_rf, rep.output_grid) == (
        (7, 7),
        (3, 3),
        (7, 7),
        (8, 8),
    )


def test_transposed_conv_is_followed():
    # Once refused. conv3 (valid) sees 3; a stride-1 transposed conv3 writes output o from
    # inputs o-2..o, so a unit after it sees 3 + 2 = 5 (padding 0: it starts 2 + 0 before).
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ConvTranspose2d(4, 1, 3))
    rep = receptive_field(m, (1, 8, 8))
    assert [(r.layer, r.rf) for r in rep.layers] == [("conv3p0", (3, 3)), ("convT3s1", (5, 5))]
    assert rep.padding == (2, 2) and rep.feature_size == (8, 8)


def test_functional_ops_are_counted_not_missed():
    # Once refused ("functional op"): fx sees F.max_pool2d as a node like any module. maxpool2
    # sees 2 at jump 2, then conv3: 2 + 2 * 2 = 6.
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return self.a(torch.nn.functional.max_pool2d(x, 2))

    rep = receptive_field(Functional(), (1, 8, 8))
    assert [(r.layer, r.rf) for r in rep.layers] == [("maxpool2", (2, 2)), ("conv3", (6, 6))]
    assert rep.layers[0].module == "max_pool2d (max_pool2d)"


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "no layers"),
        ("conv5s2,bogus", "cannot read layer 2"),
        ("maxpool2d2", "dilated pooling"),
        ("conv5s2,,conv5", "layer 2 of 'conv5s2,,conv5' is empty; remove the extra comma"),
        ("conv5,", "layer 2 of 'conv5,' is empty"),
        (" , ", "no layers"),
    ],
)
def test_bad_spec_strings(text, match):
    with pytest.raises(RFError, match=match):
        parse_specs(text)


def test_layers_that_leave_no_map_refused():
    with pytest.raises(RFError, match="leaves no feature map"):
        # no padding: 28 -> 12 -> 4 -> nothing
        receptive_field("conv5s2p0,conv5s2p0,conv5s2p0", (1, 28, 28))


def test_layer_spec_validates_values():
    with pytest.raises(RFError, match="kernel"):
        LayerSpec("conv", (0, 3))
