"""Discriminators built from :class:`ganrf.design.designs.DiscriminatorDesign` values."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganrf.design.designs import DiscriminatorDesign
from ganrf.design.resnet import ResidualDesign
from ganrf.design.rf import conv_padding, torch_conv_padding
from ganrf.models.resnet import ResidualDiscriminator
from ganrf.models.spectral import spectral_norm  # PyTorch's values, and it packs

# Keras' LeakyReLU default, which the notes' discriminators use (PyTorch DCGAN code uses 0.2).
LEAKY_SLOPE = 0.3


class _NativeInputGradConv(torch.autograd.Function):
    """``F.conv2d`` whose input gradient takes PyTorch's native CPU kernel instead of oneDNN's.

    For a conv that reads the image (1 or 3 channels), oneDNN's backward-data kernel is 2.5-4x
    slower than the native one on the CPU (2 cores, batch 64, 1 -> 64 channels at 28x28:
    k = 13 52 ms against 13 ms; k = 5 8.6 against 2.2; k = 28 33 against 20), and that gradient
    is the G step's path through D, paid every step. oneDNN stays for the forward and the weight
    gradient, where it is the faster. The values are the same up to float rounding.
    """

    generate_vmap_rule = True  # packs: vmap runs forward and backward batched

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation):
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, bias, stride, padding, dilation = inputs
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, dilation)
        ctx.bias_size = None if bias is None else [bias.shape[0]]

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        conv_backward = torch.ops.aten.convolution_backward
        geometry = (stride, padding, dilation, False, [0, 0], 1)
        gx = gw = gb = None
        if need_x:
            was = torch._C._get_mkldnn_enabled()
            torch._C._set_mkldnn_enabled(False)  # read when the kernel is chosen, just below
            try:
                gx = conv_backward(grad, x, weight, None, *geometry, [True, False, False])[0]
            finally:
                torch._C._set_mkldnn_enabled(was)
        if need_w or need_b:
            mask = [False, bool(need_w), bool(need_b)]
            _, gw, gb = conv_backward(grad, x, weight, ctx.bias_size, *geometry, mask)
        return gx, gw, gb, None, None, None


class ImageConv2d(nn.Conv2d):
    """The first conv of D, which reads the image: on the CPU its input gradient is computed
    by :class:`_NativeInputGradConv` (the same values, several times faster there)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        if self.padding == "same":
            (top, bottom), (left, right) = (
                conv_padding(k, 1, d) for k, d in zip(self.kernel_size, self.dilation)
            )
            padding = [top, left]
            if (top, left) != (bottom, right):
                # An even kernel: split as ATen's padding="same" splits it (_convolution_same):
                # the odd pixel padded explicitly after, the symmetric part the conv's own. The
                # forward then makes oneDNN's very call, so its values are torch's to the bit (a
                # 55x55 input at padding 0 took another kernel on an AVX2 CPU: other rounding).
                x = F.pad(x, (0, right - left, 0, bottom - top))
        else:
            padding = list(self.padding)
        return _NativeInputGradConv.apply(
            x, self.weight, self.bias, list(self.stride), padding, list(self.dilation)
        )


class ImageHead(nn.Sequential):
    """Flatten + dense: one logit per image; its decision rf is the whole image."""

    def __init__(self, channels: int, feature_size: int, sn: bool = False) -> None:
        dense = nn.Linear(channels * feature_size * feature_size, 1)
        super().__init__(nn.Flatten(), spectral_norm(dense) if sn else dense)


class PatchHead(nn.Sequential):
    """1x1 conv: one logit per location (Markovian / PatchGAN); decision rf = conv rf."""

    def __init__(self, channels: int, sn: bool = False) -> None:
        conv = nn.Conv2d(channels, 1, 1)
        super().__init__(spectral_norm(conv) if sn else conv)


class Discriminator(nn.Module):
    """conv -> [norm] -> LeakyReLU -> [dropout], per layer of the design, then the head.

    Output: ``(B, 1)`` logits for the image head, ``(B, 1, H', W')`` for the patch head.
    """

    def __init__(self, design: DiscriminatorDesign) -> None:
        super().__init__()
        self.design = design
        sn = design.norm == "spectral"
        layers: list[nn.Module] = []
        cin = design.in_channels
        for i, la in enumerate(design.layers):
            normed = design.normalised(i)  # every conv but the first, as DCGAN
            conv = (ImageConv2d if i == 0 else nn.Conv2d)(
                cin,
                la.channels,
                la.kernel,
                la.stride,
                torch_conv_padding(la.kernel, la.stride, la.dilation),
                la.dilation,
                bias=not (normed and design.norm == "batch"),  # BN's shift replaces the bias
            )
            layers.append(spectral_norm(conv) if sn else conv)
            if normed and design.norm == "batch":
                layers.append(nn.BatchNorm2d(la.channels))
            elif normed:
                layers.append(nn.InstanceNorm2d(la.channels, affine=True))
            layers.append(nn.LeakyReLU(LEAKY_SLOPE))
            if design.dropout > 0:
                layers.append(nn.Dropout(design.dropout))
            cin = la.channels
        self.features = nn.Sequential(*layers)
        if design.head == "image":
            self.head: nn.Module = ImageHead(cin, design.feature_size, sn)
        else:
            self.head = PatchHead(cin, sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_discriminator(
    design: DiscriminatorDesign | ResidualDesign,
) -> Discriminator | ResidualDiscriminator:
    """The module a design describes: a plain stack or, for the ``resnet`` family, residual
    blocks (:class:`ganrf.models.resnet.ResidualDiscriminator`)."""
    if isinstance(design, ResidualDesign):
        return ResidualDiscriminator(design)
    return Discriminator(design)
