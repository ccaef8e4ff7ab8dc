import torch

from ganrf.models import DCGANGenerator, MNISTGenerator, build_generator


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
