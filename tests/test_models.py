import pytest
import torch

from ganrf.design import receptive_field
from ganrf.design.designs import ConvLayer, DiscriminatorDesign
from ganrf.design.rf import conv_padding
from ganrf.models import DCGANGenerator, MNISTGenerator, build_discriminator, build_generator


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


@pytest.mark.parametrize(
    "cin,kernel,stride,dilation",
    [(1, 13, 1, 1), (1, 28, 1, 1), (1, 4, 1, 1), (3, 5, 2, 1), (1, 3, 1, 2), (1, 1, 1, 1)],
)
def test_image_conv_gives_torch_conv2d_values_and_gradients(cin, kernel, stride, dilation):
    # D's first conv computes its input gradient with the native CPU kernel (ganrf.models.
    # discriminator.ImageConv2d); torch's own Conv2d with the same padding is the reference.
    from ganrf.design.rf import torch_conv_padding
    from ganrf.models.discriminator import ImageConv2d

    torch.manual_seed(0)
    mkldnn_before = torch._C._get_mkldnn_enabled()
    args = (cin, 5, kernel, stride, torch_conv_padding(kernel, stride, dilation), dilation)
    ref, ours = torch.nn.Conv2d(*args), ImageConv2d(*args)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, cin, 28, 28, requires_grad=True)
    y_ref, y = ref(x), ours(x)
    assert y.shape == y_ref.shape and torch.equal(y, y_ref)
    w = torch.randn_like(y_ref)  # a loss whose gradient is not constant
    grads_ref = torch.autograd.grad((y_ref * w).sum(), [x, ref.weight, ref.bias])
    grads = torch.autograd.grad((y * w).sum(), [x, ours.weight, ours.bias])
    for g, g_ref in zip(grads, grads_ref):
        assert _max_rel(g, g_ref) < 1e-5  # float reassociation only
    assert torch._C._get_mkldnn_enabled() == mkldnn_before  # the backward restored it
    # only the weight (the D step: the image needs no gradient)
    (gw,) = torch.autograd.grad((ours(x.detach()) * w).sum(), [ours.weight])
    assert _max_rel(gw, grads_ref[1]) < 1e-5


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference, relative to the reference's largest magnitude."""
    return ((a - b).abs().max() / b.abs().max()).item()


def test_image_conv_under_vmap_as_packs_run_it():
    from torch.func import functional_call, stack_module_state, vmap

    from ganrf.models.discriminator import ImageConv2d

    torch.manual_seed(1)
    convs = [ImageConv2d(1, 4, 13, 1, "same") for _ in range(2)]
    params, buffers = stack_module_state(convs)
    base = ImageConv2d(1, 4, 13, 1, "same").to("meta")
    x = torch.randn(2, 3, 1, 28, 28, requires_grad=True)
    y = vmap(lambda p, b, xi: functional_call(base, (p, b), (xi,)))(params, buffers, x)
    gx, gw = torch.autograd.grad(y.square().sum(), [x, params["weight"]])
    for i, conv in enumerate(convs):
        xi = x[i].detach().requires_grad_()
        ref = torch.nn.functional.conv2d(xi, conv.weight, conv.bias, padding="same")
        torch.testing.assert_close(y[i], ref)
        rx, rw = torch.autograd.grad(ref.square().sum(), [xi, conv.weight])
        assert _max_rel(gx[i], rx) < 1e-5 and _max_rel(gw[i], rw) < 1e-5


def test_only_the_image_reading_conv_takes_the_native_input_gradient():
    from ganrf.models.discriminator import ImageConv2d

    design = DiscriminatorDesign(
        (ConvLayer(5, 2, channels=4), ConvLayer(5, 2, channels=8)), head="image", image_size=28
    )
    convs = [m for m in build_discriminator(design).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [type(m) is ImageConv2d for m in convs] == [True, False]
