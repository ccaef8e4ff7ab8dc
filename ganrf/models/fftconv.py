"""Large-kernel convolutions by FFT: the same layer, computed in O(HW log HW) per channel.

A one-layer discriminator with a 13x13 or 28x28 kernel at stride 1 on 28x28 digits costs
k^2 = 169 or 784 multiply-adds per output and input channel computed directly; by FFT the cost
hardly depends on k. :class:`FFTConv2d` is an ``nn.Conv2d`` (same parameters, state dict and
rf), whose forward switches to the FFT when the kernel is large enough to gain.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# From this kernel side on the FFT wins (fwd+bwd, batch 64, 1 -> 64 channels at 28x28, 2-core
# CPU: 13x13 1.2x faster, 27x27 3.3x; a 5x5 is 2.3x slower by FFT).
FFT_FROM_KERNEL = 11


def fft_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.conv2d(x, weight, bias, padding="same")`` at stride 1, dilation 1, groups 1.

    Cross-correlation is convolution with the flipped kernel; the full linear convolution has
    H + k - 1 rows, and "same" keeps rows ``k - 1 - left`` on (``left`` = PyTorch's split of
    the k - 1 padding: ``(k - 1) // 2`` before).
    """
    kh, kw = weight.shape[-2:]
    h, w = x.shape[-2:]
    size = (h + kh - 1, w + kw - 1)
    # FFTs in fp32 at least (cuFFT takes half precision only at power-of-two sizes)
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    xf = torch.fft.rfft2(x.to(dtype), s=size)  # (B, Cin, H', W'/2+1)
    wf = torch.fft.rfft2(torch.flip(weight.to(dtype), (-2, -1)), s=size)  # (Cout, Cin, ...)
    y = torch.fft.irfft2(torch.einsum("bihw,oihw->bohw", xf, wf), s=size)
    top, left = kh - 1 - (kh - 1) // 2, kw - 1 - (kw - 1) // 2
    y = y[..., top : top + h, left : left + w]
    if bias is not None:
        y = y + bias.to(dtype)[:, None, None]
    return y.to(x.dtype)


class FFTConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` with "same" padding that runs by FFT when its kernel is large."""

    def uses_fft(self) -> bool:
        return (
            min(self.kernel_size) >= FFT_FROM_KERNEL
            and self.stride == (1, 1)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding == "same"
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.uses_fft():
            return fft_conv2d(x, self.weight, self.bias)
        return super().forward(x)
