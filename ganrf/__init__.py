"""gan_rf: how the receptive field of a GAN's discriminator changes what the generator learns."""

import warnings

# PyTorch warns that padding='same' with an even kernel pads a copy of the input. Even kernels
# are how rf-equivalent stride-1 stacks (two 4x4 = one 7x7) are built, so the copy is expected.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")

__version__ = "0.1.0"
