"""Discriminator designs and what they see: rf arithmetic (torch-free), tracing an
``nn.Module``, the norm rule, design values and the solver that finds them."""
