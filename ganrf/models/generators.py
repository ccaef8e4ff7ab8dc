"""Generators: the notes' MNIST generator and DCGAN-style generators for 64 and 128 px."""

from __future__ import annotations

import math

import torch
from torch import nn

from ganrf.models.discriminator import LEAKY_SLOPE
from ganrf.models.resnet import ResidualGenerator


class MNISTGenerator(nn.Module):
    """The notes' generator, exactly (Keras ``padding='same'`` reproduced with output_padding).

    Dense(noise -> 7*7*256, no bias) -> BN -> LReLU -> (256, 7, 7) -> ConvT 128 k5 s1 -> BN ->
    LReLU -> ConvT 64 k5 s2 (14x14) -> BN -> LReLU -> ConvT 1 k5 s2 (28x28) -> tanh; no biases.
    ``width`` scales 256/128/64 for a laptop preset.
    """

    image_size = 28

    def __init__(self, noise_dim: int = 100, width: float = 1.0, channels: int = 1) -> None:
        super().__init__()
        c1, c2, c3 = (max(1, round(c * width)) for c in (256, 128, 64))
        self.noise_dim, self.c1 = noise_dim, c1
        self.project = nn.Sequential(
            nn.Linear(noise_dim, 7 * 7 * c1, bias=False),
            nn.BatchNorm1d(7 * 7 * c1),
            nn.LeakyReLU(LEAKY_SLOPE),
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c1, c2, 5, 1, 2, bias=False),  # (B, c2, 7, 7)
            nn.BatchNorm2d(c2),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.ConvTranspose2d(c2, c3, 5, 2, 2, output_padding=1, bias=False),  # (B, c3, 14, 14)
            nn.BatchNorm2d(c3),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.ConvTranspose2d(c3, channels, 5, 2, 2, output_padding=1, bias=False),  # 28x28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(-1, self.c1, 7, 7)  # Keras reshapes (7, 7, 256) channels-last
        return self.net(x)


class DCGANGenerator(nn.Module):
    """DCGAN (Radford et al. 2016) generator: 4x4 projection, then stride-2 ConvT, BN, ReLU,
    doubling the size up to ``image_size`` (64 for CelebA, 128 for ImageNet); tanh output."""

    def __init__(
        self, noise_dim: int = 100, image_size: int = 64, channels: int = 3, width: float = 1.0
    ) -> None:
        super().__init__()
        n_up = math.log2(image_size / 4)
        if image_size < 8 or n_up != int(n_up):
            raise ValueError(
                f"DCGAN generator needs a power-of-two image size >= 8, got {image_size}"
            )
        n_up = int(n_up)
        ngf = max(1, round(64 * width))
        self.noise_dim, self.image_size = noise_dim, image_size
        ch = ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(noise_dim, ch, 4, 1, 0, bias=False),  # (B, ch, 4, 4)
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


def build_generator(
    kind: str, *, noise_dim: int, image_size: int, channels: int, width: float
) -> nn.Module:
    """``kind``: ``"mnist"`` (the notes' 28x28 generator), ``"dcgan"`` (64 or 128) or
    ``"resnet"`` (SNGAN/BigGAN-like residual: 28, 32, 64 or 128)."""
    if kind == "mnist":
        if image_size != 28:
            raise ValueError(f"the notes' MNIST generator makes 28x28 images, not {image_size}")
        return MNISTGenerator(noise_dim, width, channels)
    if kind == "dcgan":
        return DCGANGenerator(noise_dim, image_size, channels, width)
    if kind == "resnet":
        return ResidualGenerator(noise_dim, image_size, channels, width)
    raise ValueError(f"unknown generator {kind!r}; choose 'mnist', 'dcgan' or 'resnet'")


def generator_for(cfg) -> nn.Module:
    """The generator a :class:`ganrf.config.TrainConfig` asks for."""
    return build_generator(
        cfg.g.kind,
        noise_dim=cfg.g.noise_dim,
        image_size=cfg.data.image_size,
        channels=cfg.data.channels,
        width=cfg.g.width,
    )


@torch.no_grad()
def sample(g: nn.Module, noise: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Generator output for ``noise`` in eval mode (BatchNorm running statistics), fp32."""
    was = g.training
    g.eval()
    try:
        return torch.cat([g(z).float() for z in noise.split(batch)])
    finally:
        g.train(was)
