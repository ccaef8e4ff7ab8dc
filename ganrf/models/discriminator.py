"""Discriminators built from :class:`ganrf.designs.DiscriminatorDesign` values."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganrf.designs import DiscriminatorDesign
from ganrf.rf import torch_conv_padding

# Keras' LeakyReLU default, which the notes' discriminators use (PyTorch DCGAN code uses 0.2).
LEAKY_SLOPE = 0.3


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
            conv = nn.Conv2d(
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


def build_discriminator(design: DiscriminatorDesign) -> Discriminator:
    return Discriminator(design)
