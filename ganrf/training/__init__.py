"""The one training loop and what it is made of: packs of member GANs, one step, losses,
checkpoints, and the CPU heap settings."""
