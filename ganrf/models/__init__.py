"""Generators and design-built discriminators."""

from ganrf.models.discriminator import Discriminator, ImageHead, PatchHead, build_discriminator
from ganrf.models.generators import (
    DCGANGenerator,
    MNISTGenerator,
    build_generator,
    generator_for,
    sample,
)
from ganrf.models.resnet import ResidualDiscriminator, ResidualGenerator

__all__ = [
    "Discriminator",
    "ImageHead",
    "PatchHead",
    "build_discriminator",
    "MNISTGenerator",
    "DCGANGenerator",
    "build_generator",
    "generator_for",
    "sample",
    "ResidualDiscriminator",
    "ResidualGenerator",
]
