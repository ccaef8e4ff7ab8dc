"""The resnet family: residual designs (rf by hand, by the closed form and by the input gradient),
their solver, and the residual D and G modules (parameter counts, shapes per image size)."""

import pytest
import torch

from ganrf.config import TrainConfig
from ganrf.design.designs import DesignError, param_count
from ganrf.design.resnet import ResidualDesign
from ganrf.design.resnet_search import rf_closed_form
from ganrf.design.search import feasible, match_capacity, solve
from ganrf.models import build_discriminator, build_generator
from ganrf.models.resnet import RESNET_G_PLANS, DBlock

SNGAN32 = "res3s2,res3s2,res3,res3"


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_sngan_32_discriminator_by_hand():
    # Block 1 at jump 1 adds 2*2 + 1 = 5 (rf 6); block 2 at jump 2 adds 2*5 = 10 (16); blocks 3
    # and 4 at jump 4 add 4*4 = 16 each: 48. Parameters, channels 128: block 1 (3 -> 128, first)
    # 3*128*9+128 + 128*128*9+128 + 3*128+128 = 151680; block 2 (pools: 1x1 shortcut)
    # 2*(128*128*9+128) + 128*128+128 = 311680; blocks 3, 4 (identity) 2*(147456+128) each;
    # head 128 + 1: 1053825.
    d = ResidualDesign.from_spec(SNGAN32, channels="128,128,128,128", image_size=32, in_channels=3)
    assert (d.rf, d.feature_size, d.decision_rf, d.report.stride[0]) == (48, 8, 32, 4)
    assert d.report.decision_reason == "global mean over the last map"
    assert rf_closed_form((3, 3, 3, 3), (True, True, False, False)) == 48
    assert param_count(d) == 1053825
    assert n_params(build_discriminator(d)) == 1053825
    assert d.name == "rf48-d4-res3s2_res3s2_res3_res3-image"
    patch = ResidualDesign.from_spec(SNGAN32 + ",patch", image_size=32)
    assert (patch.head, patch.decision_rf, patch.report.output_grid) == ("patch", 48, (8, 8))


def test_block_parameter_counts_by_hand():
    # first block 1 -> 4, pooling: conv1 1*4*9+4 = 40, conv2 4*4*9+4 = 148, shortcut 1*4+4 = 8;
    # block 2 4 -> 8 (hidden 4): conv1 4*4*9+4 = 148, conv2 4*8*9+8 = 296, shortcut 4*8+8 = 40.
    assert n_params(DBlock(1, 4, 3, down=True, first=True, sn=False)) == 196
    assert n_params(DBlock(4, 8, 3, down=False, first=False, sn=True)) == 484
    same = DBlock(8, 8, 5, down=False, first=False, sn=False)
    assert same.shortcut is None and n_params(same) == 2 * (8 * 8 * 25 + 8)
    d = ResidualDesign.from_spec("res3s2,res3", channels="4,8", image_size=28, in_channels=1)
    assert param_count(d) == 196 + 484 + 9 == n_params(build_discriminator(d))


def _input_gradient_window(design: ResidualDesign) -> tuple[int, int, int]:
    """(first row, last row, unit row) of the input-gradient support of the central unit of the
    last map, with every weight a positive constant and every bias zero (nothing cancels)."""
    d = build_discriminator(design).double()
    with torch.no_grad():
        for name, p in d.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 0.1)
    x = torch.ones(1, design.in_channels, design.image_size, design.image_size).double()
    x.requires_grad_(True)
    fmap = d.features(x)
    i = fmap.shape[2] // 2
    fmap[0, :, i, i].sum().backward()
    rows = x.grad[0].abs().sum((0, 2)).nonzero().flatten()
    return int(rows.min()), int(rows.max()), i


@pytest.mark.parametrize(
    "spec,rf",
    [
        (SNGAN32, 48),
        ("res5", 9),
        ("res1s2,res3s2", 12),  # 1*(0+1) + 2*(4+1)
        ("res3,res7s2,res3", 1 + 4 + 13 + 2 * 4),  # 26
        ("res5s2,res3,res1s2,res3s2", 1 + 9 + 2 * 4 + 2 * 1 + 4 * 5),  # 40
    ],
)
def test_rf_is_the_input_gradient_support(spec, rf):
    size = 4 * rf  # every window of the central unit lies away from the border
    design = ResidualDesign.from_spec(
        spec, norm="none", head="patch", image_size=size, in_channels=2
    ).scaled(2 / 64)
    first, last, i = _input_gradient_window(design)
    rep = design.report
    assert design.rf == rf == last - first + 1
    assert first == i * rep.stride[0] - rep.padding[0]  # where the ERF centres its unit
    kernels = tuple(b.kernel for b in design.layers)
    assert rf_closed_form(kernels, tuple(b.down for b in design.layers)) == rf


def test_solver_targets_rf_by_blocks_kernels_and_pools():
    assert solve(13, 2, family="resnet", image_size=28)[0].spec_string == "res5,res3"
    assert solve(14, 2, family="resnet", image_size=28)[0].spec_string == "res3s2,res3"
    assert solve(28, 2, family="resnet", image_size=28)[0].spec_string == "res5s2,res5s2"
    every = solve(14, 2, family="resnet", image_size=28, exhaustive=True)
    assert all(d.rf == 14 for d in every) and len(every) == len({d for d in every}) > 1
    # odd kernels: no pool leaves rf = 1 mod 4, so rf 7 needs pools and cannot be hit
    assert not feasible(7, 2, "resnet", 28) and feasible(6, 2, "resnet", 28)
    with pytest.raises(DesignError, match="rf 6 or 8"):
        solve(7, 2, family="resnet", image_size=28)
    with pytest.raises(DesignError, match="1 to 5 residual blocks"):
        solve(13, 6, family="resnet", image_size=28)


def test_capacity_matching_holds_residual_designs_within_ten_percent():
    group = [solve(14, depth, family="resnet", image_size=28)[0] for depth in (1, 2, 3)]
    counts = [param_count(d) for d in group]
    assert max(counts) / min(counts) > 2  # unmatched, sizes differ a lot
    matched = match_capacity(group)
    mid = sorted(counts)[1]
    assert all(abs(param_count(d) - mid) / mid <= 0.10 for d in matched)
    assert [d.rf for d in matched] == [14, 14, 14]


def test_config_reads_residual_specs_and_records_the_family():
    cfg = TrainConfig.from_dict(
        {"d.layers": "res3s2,res3", "d.norm": "spectral", "g.kind": "resnet"}
    )
    d = cfg.design()
    assert isinstance(d, ResidualDesign) and d.channels == (64, 64)
    record = d.to_dict()
    assert (record["family"], record["rf"], record["params"]) == ("resnet", 14, param_count(d))
    with pytest.raises(DesignError, match="cannot read layer 2 'conv3'; residual layers"):
        ResidualDesign.from_spec("res3,conv3")
    with pytest.raises(DesignError, match="layer 2 of 'res3,,res3' is empty"):
        ResidualDesign.from_spec("res3,,res3")
    with pytest.raises(DesignError, match="norm none or spectral"):
        ResidualDesign.from_spec("res3", norm="batch")
    with pytest.raises(DesignError, match="leaves no feature map"):
        ResidualDesign.from_spec("res3s2,res3s2,res3s2", image_size=4)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3), (128, 3)])
def test_output_shapes_for_each_image_size(size, channels):
    g = build_generator("resnet", noise_dim=8, image_size=size, channels=channels, width=1 / 64)
    x = g(torch.randn(2, 8))
    assert x.shape == (2, channels, size, size)
    assert len(g.blocks) == len(RESNET_G_PLANS[size][1]) - 1
    pools = {28: 2, 32: 2, 64: 4, 128: 5}[size]
    spec = ",".join(["res3s2"] * pools + ["res3"])
    for head, shape in (("image", (2, 1)), ("patch", (2, 1, size >> pools, size >> pools))):
        design = ResidualDesign.from_spec(
            spec, head=head, image_size=size, in_channels=channels
        ).scaled(1 / 16)
        assert build_discriminator(design)(x).shape == shape


def test_ganrf_rf_and_designs_know_the_family(capsys):
    from ganrf.cli import main

    assert main(["rf", SNGAN32 + ",dense", "--input", "32", "--channels", "3"]) == 0
    table = capsys.readouterr().out
    assert "6   avgpool2  block2.pool   2       2       0    1         8x8          16" in table
    assert "rf 48, effective stride 4, effective padding 22" in table
    assert main(["designs", "--rf", "14", "--depth", "2", "--family", "resnet"]) == 0
    assert capsys.readouterr().out.split()[:2] == ["res3s2,res3", "rf"]
    assert main(["designs", "--rf", "7", "--depth", "2", "--family", "resnet"]) == 2
    assert "nearest at depth 2: rf 6 or 8" in capsys.readouterr().err


def test_the_docs_show_the_sngan_table_the_code_prints():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "docs" / "rf-tool.md").read_text()
    d = ResidualDesign.from_spec(SNGAN32 + ",dense", image_size=32, in_channels=3)
    cmd = f'$ ganrf rf "{SNGAN32},dense" --input 32 --channels 3\n'
    note = (
        "note: rf 48 is larger than the 32px input: each unit of the last map sees the whole "
        "image and padding beyond it (ganrf designs, ganrf train and the sweeps refuse such a D; "
        "the largest useful rf is 32)"
    )
    assert cmd + d.report.table() + "\n" + note + "\n```" in readme


def test_footprint_counts_a_residual_trial_on_the_meta_device():
    # --pack auto sizes packs from models built on torch's meta device (spectral norm included),
    # counting every leaf module's output per image: one G and two D forwards.
    from ganrf.sweep.experiments import GridPoint
    from ganrf.sweep.resources import model_footprint
    from ganrf.sweep.trial import Trial

    base = {"g.kind": "resnet", "g.width": 1 / 64, "d.norm": "spectral"}

    def footprint(spec: str, channels: str) -> tuple[int, int]:
        design = ResidualDesign.from_spec(spec, channels=channels, image_size=28, in_channels=1)
        return model_footprint(Trial.make(base, GridPoint(design, 0, ("heads",))))

    (p2, a2), (p1, a1) = footprint("res3s2,res3", "4,8"), footprint("res3s2", "4")
    assert p2 - p1 == (196 + 484 + 9) - (196 + 5)
    # block 2 (4 -> 8 at 14x14): ReLU, conv1 and ReLU 4*196 each, conv2 and shortcut 8*196
    # each; the last ReLU 8*196 instead of 4*196: 2 * (2352 + 3136 + 784)
    assert a2 - a1 == 2 * 6272


@pytest.mark.parametrize(
    "spec, size, channels, head",
    [
        ("res3s2,res3s2,res3,res3", 32, 3, "image"),  # SNGAN-32: rf 48, decision the whole image
        ("res3s2,res3s2,res3,res3", 32, 3, "patch"),
        ("res5s2,res3", 28, 1, "patch"),
        ("res7,res1s2,res3", 28, 1, "image"),
    ],
)
def test_the_fx_tracer_reads_the_built_residual_d_as_the_design_says(spec, size, channels, head):
    """Two independent routes to one number: the design's chain arithmetic (the main path) and
    the fx graph tracer following the built module's branches, shortcuts, pools and head."""
    from ganrf.design import receptive_field
    from ganrf.models import build_discriminator

    d = ResidualDesign.from_spec(spec, image_size=size, in_channels=channels, head=head)
    traced = receptive_field(build_discriminator(d), (channels, size, size))
    assert traced.size == (d.rf, d.rf)
    assert traced.decision_rf == (d.decision_rf, d.decision_rf)


# The residual designs a 28 px sweep reaches, from no pool to two (last maps 28x28 to 7x7).
SWEEP_DESIGNS = ["res1", "res3", "res3,res3", "res3s2,res3", "res3s2,res3s2,res3", "res5s2,res3"]


@pytest.mark.parametrize("spec", SWEEP_DESIGNS)
def test_every_residual_design_starts_inside_the_hinge_margin(spec):
    """The image head's logit does not grow with the last map (a global mean, not SNGAN's sum):
    with the sum, the mean |D(x)| at initialisation was 392 for res1 and 1.2 for
    res3s2,res3s2,res3, and a smoke run's first hinge loss read 449.7. Inside the margin
    (|D| < 1) the hinge D loss is 2 - mean D(real) + mean D(fake): about 2 for every design."""
    from ganrf.models.discriminator import build_discriminator
    from ganrf.training.losses import hinge_d

    torch.manual_seed(0)
    real = torch.rand(64, 1, 28, 28) * 2 - 1
    fake = torch.rand(64, 1, 28, 28) * 2 - 1
    design = ResidualDesign.from_spec(spec, image_size=28, in_channels=1, norm="spectral")
    D = build_discriminator(design)
    for _ in range(3):  # spectral norm's power iterations settle in training mode
        D(real)
    D.eval()
    with torch.no_grad():
        out_real, out_fake = D(real), D(fake)
        loss = hinge_d(out_real, out_fake).item()
    assert out_real.abs().mean() < 1.5 and out_fake.abs().mean() < 1.5
    assert loss == pytest.approx(2.0, abs=0.5)
    if out_real.abs().max() < 1 and out_fake.abs().max() < 1:  # all inside: the exact identity
        expected = 2 - out_real.mean().item() + out_fake.mean().item()
        assert loss == pytest.approx(expected, abs=1e-5)
