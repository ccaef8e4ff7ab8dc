"""Residual discriminators and generators: SNGAN (Miyato et al. 2018) 32/64 px and a BigGAN-like
(Brock et al. 2019) 128 px generator without class conditioning or attention.

D is built from a :class:`ganrf.design.resnet.ResidualDesign` (whose docstring derives its rf);
G is chosen by ``g.kind = "resnet"`` and the image size (28, 32, 64, 128).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganrf.design.resnet import ResidualDesign
from ganrf.models.spectral import spectral_norm


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(module) if on else module


class DBlock(nn.Module):
    """Pre-activation residual block: ReLU, conv k, ReLU, conv k, [avgpool 2], plus a shortcut
    (identity, or 1x1 conv then [avgpool 2] when channels or size change).

    ``first`` makes it SNGAN's optimized block: no ReLU on the image, hidden width = ``cout``
    and the shortcut pools before its 1x1 conv (cheaper on the full-size image).
    """

    def __init__(
        self, cin: int, cout: int, kernel: int, *, down: bool, first: bool, sn: bool
    ) -> None:
        super().__init__()
        self.first = first
        hidden = cout if first else cin  # SNGAN's D blocks keep the input width inside
        pad = (kernel - 1) // 2  # odd kernels: "same" and centred
        self.conv1 = _sn(nn.Conv2d(cin, hidden, kernel, 1, pad), sn)
        self.conv2 = _sn(nn.Conv2d(hidden, cout, kernel, 1, pad), sn)
        learnable = first or down or cin != cout
        self.shortcut = _sn(nn.Conv2d(cin, cout, 1), sn) if learnable else None
        # Modules, not F calls: the footprint count (ganrf.sweep.resources) hooks leaf modules.
        self.act = nn.ReLU()
        self.pool = nn.AvgPool2d(2) if down else None

    def forward(self, x: Tensor) -> Tensor:  # (B, cin, H, W) -> (B, cout, H', W')
        h = x if self.first else self.act(x)
        h = self.conv2(self.act(self.conv1(h)))
        s = x
        if self.pool is not None:
            h = self.pool(h)
            s = self.pool(s) if self.first else s  # SNGAN's first block pools first: cheaper
        if self.shortcut is not None:
            s = self.shortcut(s)
        if self.pool is not None and not self.first:
            s = self.pool(s)
        return h + s


class GlobalMeanHead(nn.Module):
    """Mean over the last map's positions, then a linear layer: one logit per image.

    SNGAN sums instead, on a last map that is always 4x4 or 8x8. An rf sweep's residual Ds end
    on maps from 7x7 to 28x28, and a sum makes the logit's scale grow with the map: at
    initialisation (spectral norm, 28 px) the mean |D(x)| was 392 for ``res1`` and 1.2 for
    ``res3s2,res3s2,res3``, so some designs started hundreds of times outside the hinge margin
    and the rf comparison was confounded by output scale. The mean is the sum over a constant
    (the map's size), so what the D can express is unchanged, and the image head becomes the
    patch head's per-position logits averaged before the loss instead of after it. Over 8
    initialisations the median |D(x)| of the sweep's designs is then 0.13 to 0.46
    (tests/test_resnet.py pins the first losses)."""

    def __init__(self, channels: int, sn: bool) -> None:
        super().__init__()
        self.linear = _sn(nn.Linear(channels, 1), sn)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, 1)
        return self.linear(x.mean((2, 3)))


class ResidualDiscriminator(nn.Module):
    """The blocks of ``design``, ReLU, then the head; ``features`` is everything before the head
    (the conv ERF reads its last map).

    Output: ``(B, 1)`` logits for the image head, ``(B, 1, H', W')`` for the patch head.
    """

    def __init__(self, design: ResidualDesign) -> None:
        super().__init__()
        self.design = design
        sn = design.norm == "spectral"
        layers: list[nn.Module] = []
        cin = design.in_channels
        for i, b in enumerate(design.layers):
            layers.append(DBlock(cin, b.channels, b.kernel, down=b.down, first=i == 0, sn=sn))
            if design.dropout > 0:
                layers.append(nn.Dropout(design.dropout))
            cin = b.channels
        layers.append(nn.ReLU())
        self.features = nn.Sequential(*layers)
        if design.head == "image":
            self.head: nn.Module = GlobalMeanHead(cin, sn)
        else:
            self.head = _sn(nn.Conv2d(cin, 1, 1), sn)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class GBlock(nn.Module):
    """SNGAN's generator block: BN, ReLU, nearest 2x upsampling, conv 3, BN, ReLU, conv 3, plus
    a shortcut of upsampling and a 1x1 conv."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1)
        self.act, self.up = nn.ReLU(), nn.Upsample(scale_factor=2.0)  # nearest

    def forward(self, x: Tensor) -> Tensor:  # (B, cin, H, W) -> (B, cout, 2H, 2W)
        h = self.up(self.act(self.bn1(x)))
        h = self.conv2(self.act(self.bn2(self.conv1(h))))
        return h + self.shortcut(self.up(x))


# Image size -> (start size, widths): the projection's channels, then each block's output.
# 32: SNGAN's CIFAR G (256 throughout); 64: SNGAN's/Mimicry's 64 px G (1024 halving);
# 128: BigGAN-like (1024, 1024, then halving), without class-conditional BN or attention;
# 28: the 32 px G started at 7x7, two blocks (MNIST).
RESNET_G_PLANS: dict[int, tuple[int, tuple[int, ...]]] = {
    28: (7, (256, 256, 256)),
    32: (4, (256, 256, 256, 256)),
    64: (4, (1024, 512, 256, 128, 64)),
    128: (4, (1024, 1024, 512, 256, 128, 64)),
}


class ResidualGenerator(nn.Module):
    """Linear(noise -> start^2 * c0), upsampling :class:`GBlock`\\ s to ``image_size``, then BN,
    ReLU, conv 3 to the image channels and tanh. ``width`` scales every width."""

    def __init__(
        self, noise_dim: int = 128, image_size: int = 32, channels: int = 3, width: float = 1.0
    ) -> None:
        super().__init__()
        if image_size not in RESNET_G_PLANS:
            raise ValueError(
                f"the residual generator makes {', '.join(map(str, RESNET_G_PLANS))} px images, "
                f"not {image_size}"
            )
        start, widths = RESNET_G_PLANS[image_size]
        ws = [max(1, round(c * width)) for c in widths]
        self.noise_dim, self.image_size, self.start, self.c0 = noise_dim, image_size, start, ws[0]
        self.project = nn.Linear(noise_dim, start * start * ws[0])
        self.blocks = nn.Sequential(*(GBlock(a, b) for a, b in zip(ws, ws[1:])))
        self.out = nn.Sequential(
            nn.BatchNorm2d(ws[-1]), nn.ReLU(), nn.Conv2d(ws[-1], channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: Tensor) -> Tensor:  # (B, noise) -> (B, C, size, size)
        x = self.project(z).view(-1, self.c0, self.start, self.start)
        return self.out(self.blocks(x))
