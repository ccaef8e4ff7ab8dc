import pytest
import torch

from ganrf.designs import ConvLayer, DiscriminatorDesign
from ganrf.models import DCGANGenerator, MNISTGenerator, build_discriminator, build_generator
from ganrf.rf import conv_padding, receptive_field


def test_notes_mnist_generator_shape_range_and_no_biases():
    g = MNISTGenerator()
    x = g(torch.randn(5, 100))
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    convs = [m for m in g.modules() if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Linear))]
    assert all(m.bias is None for m in convs)  # "no biases" in the notes
    # dense 100 -> 7*7*256 without bias is the notes' first layer
    assert g.project[0].weight.shape == (7 * 7 * 256, 100)


def test_width_multiplier_shrinks_generator():
    small = MNISTGenerator(width=0.25)
    assert (
        sum(p.numel() for p in small.parameters())
        < sum(p.numel() for p in MNISTGenerator().parameters()) / 4
    )
    assert small(torch.randn(2, 100)).shape == (2, 1, 28, 28)


def test_dcgan_generators_64_and_128():
    for size in (64, 128):
        g = build_generator("dcgan", noise_dim=100, image_size=size, channels=3, width=0.25)
        assert g(torch.randn(2, 100)).shape == (2, 3, size, size)
    assert DCGANGenerator(image_size=64).net[0].out_channels == 512  # DCGAN's 4x4x1024/2 at 64px


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_discriminator_convs_follow_the_one_padding_rule(kernel, stride, dilation):
    design = DiscriminatorDesign(
        (ConvLayer(kernel, stride, dilation, channels=2),), head="patch", image_size=12
    )
    traced = receptive_field(build_discriminator(design), (1, 12, 12)).layers[0]
    before, after = conv_padding(kernel, stride, dilation)
    out = (12 + before + after - dilation * (kernel - 1) - 1) // stride + 1
    assert traced.padding == (before, before)
    assert traced.out_size == (out, out) == design.report.layers[0].out_size
