"""How much of a GPU a trial needs, and how many pack members fit on one.

Counted from the models the trial itself builds (on torch's meta device, so nothing is allocated)
and the dataset's own size, for any generator and image size.
"""

from __future__ import annotations

import math

import torch

from ganrf.sweep.trial import Trial

# Training images per dataset when the config does not say (data.subset = 0): the dataset is
# held on the GPU as uint8 up to data.device_max_gb.
TRAIN_IMAGES = {"mnist": 60_000}


def model_footprint(trial: Trial) -> tuple[int, int]:
    """(parameters of G and D, activations per image of one G and two D forwards), counted on
    torch's meta device from the models the trial builds: right for any generator and size."""
    from ganrf.models import build_discriminator, generator_for

    cfg = trial.config
    with torch.device("meta"):
        g = generator_for(cfg)
        d = build_discriminator(trial.design)
    acts = {"g": 0, "d": 0}

    def counter(key: str):
        def hook(_mod, _inp, out) -> None:
            if isinstance(out, torch.Tensor):
                acts[key] += out[0].numel()

        return hook

    # Leaves, where a parametrized layer (spectral norm) counts as one: its parametrization's
    # output is a weight, not an activation.
    leaves = [
        (k, m)
        for k, net in (("g", g), ("d", d))
        for name, m in net.named_modules()
        if "parametrizations" not in name.split(".")
        and not [c for n, c in m.named_children() if n != "parametrizations"]
    ]
    handles = [m.register_forward_hook(counter(k)) for k, m in leaves]
    try:
        with torch.no_grad():
            d(g(torch.empty(2, cfg.g.noise_dim, device="meta")))
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() for net in (g, d) for p in net.parameters())
    return params, acts["g"] + 2 * acts["d"]  # D sees a real and a fake batch


def gpu_need_bytes(pack: list[Trial]) -> float:
    """A rough upper bound of a pack's GPU memory: every member's weights, Adam state and
    activations, the dataset once, and the CUDA context."""
    cfg = pack[0].config
    member_bytes = 0.0
    for trial in pack:
        params, acts = model_footprint(trial)
        act_bytes = 4 * cfg.schedule.batch_size * acts * 2  # fp32 bound, kept for backward
        member_bytes += act_bytes + 16 * params  # weights, grads, two Adam moments
    image_bytes = cfg.data.channels * cfg.data.image_size**2
    if cfg.data.dataset == "synthetic":
        n_images = cfg.data.synthetic_size
    elif cfg.data.dataset == "photo":
        n_images = cfg.data.crops
    else:
        n_images = cfg.data.subset or TRAIN_IMAGES.get(cfg.data.dataset, math.inf)
    data_bytes = min(n_images * image_bytes, cfg.data.device_max_gb * 1e9)
    return (member_bytes + data_bytes) * 1.5 + 500e6


def gpu_fraction(pack: list[Trial], gpu_memory: float) -> float:
    """A GPU share sized to the pack, rounded up to 1/16 and at least 1/8 (so at most eight
    trials share one GPU: they only take turns on it; packs are how a GPU is filled)."""
    need = gpu_need_bytes(pack)
    return min(1.0, max(1 / 8, math.ceil(16 * need / gpu_memory) / 16))


def gpu_memory_bytes() -> float:
    """This machine's first GPU's memory (80 GB where none is visible, e.g. a laptop driving a
    GPU cluster)."""
    if torch.cuda.is_available():
        return float(torch.cuda.get_device_properties(0).total_memory)
    return 80e9


def auto_pack_size(trials: list[Trial], gpu_memory: float, most: int = 32) -> int:
    """The most members of the largest trial that fit in 90% of one GPU (at most ``most``)."""
    biggest = max(trials, key=lambda t: gpu_need_bytes([t]))
    k = 1
    while k < min(most, len(trials)) and gpu_need_bytes([biggest] * (k + 1)) <= 0.9 * gpu_memory:
        k += 1
    return k
