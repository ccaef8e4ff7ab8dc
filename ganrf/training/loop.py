"""The one training loop: ``train(config, report)``, and ``train_pack`` under it.

Ray Tune, the ``ganrf train`` CLI, the benchmark and the tests all call :func:`train` (one GAN)
or :func:`train_pack` (K member GANs as one computation, :mod:`ganrf.training.pack`) and pass their own
``report(metrics, checkpoint_dir)``; nothing else in the project has a loop. A plain trial is a
pack of one.

On CUDA the dataset lives on the GPU and each step is one CUDA graph (:mod:`ganrf.training.stepper`);
losses and the divergence flags stay on the device and are read only at evaluation time, so there
is no host synchronisation per step. On CPU: fp32, ``threads`` CPU threads, and divergence is
checked every step.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganrf.config import TrainConfig
from ganrf.data import load_training_images, steps_per_epoch
from ganrf.design.designs import DiscriminatorDesign
from ganrf.models import sample
from ganrf.runs import REAL_GRID, SAMPLES_DIR, sample_grid_file, write_trial_files
from ganrf.training.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from ganrf.training.malloc import keep_freed_memory
from ganrf.training.pack import Pack, build_models
from ganrf.training.stepper import Stepper

log = logging.getLogger(__name__)

Report = Callable[[dict[str, Any], "str | None"], None]
WARMUP_STEPS = 3  # left out of the first period's time per epoch
PackReport = Callable[[list["dict[str, Any] | None"], "str | None"], None]

__all__ = ["train", "train_pack", "build_models", "pick_device", "fixed_noise"]


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU; anything else as torch reads it."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} asked for but CUDA is not available; use 'auto' or 'cpu'"
        )
    return dev


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def _step_batches(data, cfg: TrainConfig, spe: int, step: int, device) -> Iterator[list[Tensor]]:
    """One member's real batches for each step from ``step`` on, epoch after epoch."""
    k, b = cfg.optim.d_steps, cfg.schedule.batch_size
    epoch, pos = divmod(step, spe)
    while True:
        it = data.batches(seed=cfg.seed, epoch=epoch, start=pos * k, batch_size=b, device=device)
        for _ in range(pos, spe):
            yield [next(it) for _ in range(k)]
        epoch, pos = epoch + 1, 0


def _pack_batches(streams: list[Iterator[list[Tensor]]]) -> Iterator[list[Tensor]]:
    """Per step, per D step: the members' batches stacked, (K, B, C, H, W)."""
    while True:
        per_member = [next(s) for s in streams]
        yield [torch.stack(xs) for xs in zip(*per_member)]


def fixed_noise(cfg: TrainConfig, n: int, device: torch.device) -> Tensor:
    """The same noise for every evaluation and trial of a seed, so sample grids compare."""
    g = torch.Generator().manual_seed(10_000 + cfg.seed)
    return torch.randn(n, cfg.g.noise_dim, generator=g).to(device)


def train(
    config: TrainConfig | dict[str, Any],
    report: Report | None = None,
    *,
    resume_from: str | Path | None = None,
    out_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train one GAN (a pack of one: :func:`train_pack`).

    Args:
        config: a :class:`TrainConfig` (validated when it was made) or a flat/nested dict of its
            fields.
        report: called every evaluation period with namespaced metrics (``loss/d``,
            ``metric/...`` as registered in :mod:`ganrf.metrics.spec`, ``time/epoch_s``,
            ``status``) and a checkpoint directory that exists only for the call (copy what you
            keep). ``None`` after a divergence: a poisoned state is never checkpointed.
        resume_from: a checkpoint directory written by an earlier call; the run continues
            exactly (same batches, same RNG).
        out_dir: the trial folder for artifacts (resolved config.json, design.json, sample
            grids, ERF maps).
        progress: ``progress(step, total_steps)`` after every step (a progress bar).

    Returns:
        The last metrics, with ``status`` ``"finished"`` or ``"diverged"``.
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)

    def report_one(metrics: list[dict[str, Any] | None], ckpt: str | None) -> None:
        if report is not None and metrics[0] is not None:
            report(metrics[0], ckpt)

    out = [Path(out_dir)] if out_dir is not None else None
    return train_pack([cfg], report_one, resume_from=resume_from, out_dirs=out, progress=progress)[
        0
    ]


def train_pack(
    configs: list[TrainConfig],
    report: PackReport | None = None,
    *,
    resume_from: str | Path | None = None,
    out_dirs: list[Path] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Train K member GANs as one pack (:mod:`ganrf.training.pack`); each exactly as it would alone.

    Args:
        configs: the members' configs; they agree on everything but seed and ``d.*``.
        report: ``report(metrics, checkpoint_dir)`` every evaluation period, ``metrics`` a list
            with each member's metrics, or None for a member that diverged before this period
            (it reported its divergence once). The checkpoint holds the whole pack; it is None
            when every member has diverged.
        resume_from: a pack checkpoint; every member continues exactly.
        out_dirs: one trial folder per member (config.json, design.json, samples, ERF maps).
        progress: ``progress(step, total_steps)`` after every step.

    Returns:
        Each member's last metrics, ``status`` ``"finished"`` or ``"diverged"``.
    """
    cfg = configs[0]  # the hyper-parameters every member shares
    designs = [c.design() for c in configs]
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cpu":
        keep_freed_memory()
    outs = out_dirs or [None] * len(configs)
    for c, out in zip(configs, outs):
        if out is not None:
            write_trial_files(out, config=c.to_dict())

    # The members share one data config (ganrf.training.pack.pack_key); only the synthetic set, made from
    # the seed, differs between them, so a real dataset and its reference are loaded once.
    def data_key(c: TrainConfig) -> int | None:
        return c.seed if c.data.dataset == "synthetic" else None

    datas: dict[int | None, Any] = {}
    for c in configs:
        if data_key(c) not in datas:
            datas[data_key(c)] = load_training_images(c.data, device, seed=c.seed)
    data_of = [datas[data_key(c)] for c in configs]
    spe = steps_per_epoch(data_of[0].num_images, cfg.schedule.batch_size, cfg.optim.d_steps)
    total = cfg.schedule.steps or cfg.schedule.epochs * spe
    period = cfg.schedule.eval_every_steps or cfg.schedule.eval_every * spe

    pack = Pack(configs, device, designs)
    for i, (c, design, out) in enumerate(zip(configs, designs, outs)):
        if out is not None:
            write_trial_files(out, design=describe_models(c, design, pack.member(i)[0]))
    stepper = Stepper(pack, cfg, device)
    step = 0
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        check_compatible(configs, state["configs"])
        step = int(state["step"])
        stepper.load_state_dict(state, step)
    else:
        torch.manual_seed(cfg.seed + 1)  # dropout, after init (noise has its own streams)

    evaluators: list[Any] = [None] * len(configs)
    if cfg.eval.metrics:
        from ganrf.metrics.evaluate import Evaluator

        shared: dict[int | None, Evaluator] = {}
        for i, (c, d) in enumerate(zip(configs, designs)):
            if data_key(c) not in shared:
                shared[data_key(c)] = Evaluator(c, device, design=d)
            evaluators[i] = copy.copy(shared[data_key(c)])  # the reference features, once
            evaluators[i].design = d
    spe_info = {"progress/steps_per_epoch": spe, "pack/members": len(configs)}
    noises = [fixed_noise(c, c.eval.grid, device) for c in configs]
    streams = [_step_batches(data, c, spe, step, device) for data, c in zip(data_of, configs)]
    batches = _pack_batches(streams)
    check_every = 1 if device.type == "cpu" else period
    done = [bad is not None for bad in stepper.bad_steps()]  # diverged before a resume
    last: list[dict[str, Any]] = [
        {"status": "diverged" if d else "finished", "progress/step": step, **spe_info} for d in done
    ]
    warmed = False
    while step < total and not all(done):
        end = min(total, (step // period + 1) * period)
        first = timed_from = step
        t0 = time.perf_counter()
        # The first steps of a process pay one-time costs (kernel selection, allocator warm-up,
        # graph capture): leave them out of the time per epoch, or whichever trial runs first
        # in a worker looks slowest.
        warm = WARMUP_STEPS if not warmed and end - first > 2 * WARMUP_STEPS else 0
        warmed = True
        while step < end:
            stepper.step(next(batches))
            step += 1
            if progress is not None:
                progress(step, total)
            if warm and step == first + warm:
                stepper.bad_steps()  # a sync: the warm-up's queued work is done
                t0, timed_from = time.perf_counter(), step
            if step % check_every == 0 and all(b is not None for b in stepper.bad_steps()):
                break
        bad = stepper.bad_steps()  # syncs the device: the period's time is now honest
        train_s = time.perf_counter() - t0
        finite = pack.weights_finite().tolist()
        for i in range(len(configs)):
            # Losses can still be finite one step after an overflow; the weights are not. Never
            # evaluate such a member (LAPACK aborts the process on NaN matrices).
            if bad[i] is None and not finite[i] and not done[i]:
                bad[i] = step - 1
        means = stepper.take_means()
        common = {
            "time/epoch_s": train_s * spe / max(step - timed_from, 1),
            "progress/step": step,
            "progress/epoch": step / spe,
            **spe_info,
        }
        metrics: list[dict[str, Any] | None] = [None] * len(configs)
        newly_dead = []
        for i, c in enumerate(configs):
            if done[i]:
                continue
            m = {"loss/d": means[i][0], "loss/g": means[i][1], **common}
            if bad[i] is not None:
                m |= {"status": "diverged", "diverged_step": bad[i]}
                log.warning("member %d: losses became non-finite at step %d", i, bad[i])
                newly_dead.append(i)
            else:
                t1 = time.perf_counter()
                g, d = pack.member(i)
                m |= _evaluate(g, d, c, device, noises[i], outs[i], step, evaluators[i])
                m["time/eval_s"] = time.perf_counter() - t1
                m["status"] = "finished" if step >= total else "running"
            metrics[i] = last[i] = m
        stepper.freeze(newly_dead)
        for i in newly_dead:
            done[i] = True
        if report is None:
            continue
        if all(done):  # nothing alive: nothing worth a checkpoint
            report(metrics, None)
            break
        ckpt = Path(tempfile.mkdtemp(prefix="ganrf-ckpt-"))
        try:
            state = stepper.state_dict()
            save_checkpoint(ckpt, configs=configs, step=step, state=state)
            report(metrics, str(ckpt))
        finally:
            shutil.rmtree(ckpt, ignore_errors=True)
    return last


def describe_models(cfg: TrainConfig, design: DiscriminatorDesign, g: nn.Module) -> dict[str, Any]:
    """The trial's architectures as data the analysis reads without torch (``design.json``):
    the discriminator design (layer table, rf, decision rf; :meth:`DiscriminatorDesign.to_dict`)
    and G's layers."""
    g_info = {
        "kind": cfg.g.kind,
        "noise_dim": cfg.g.noise_dim,
        "width": cfg.g.width,
        "params": sum(p.numel() for p in g.parameters()),
        "layers": [
            f"{name}: {m}" for name, m in g.named_modules() if not list(m.children()) and name
        ],
    }
    return {"discriminator": design.to_dict(), "generator": g_info}


def _evaluate(g, d, cfg, device, noise, out, step, evaluator) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if out is not None:
        from torchvision.utils import save_image

        grid = sample(g, noise)
        (out / SAMPLES_DIR).mkdir(exist_ok=True)
        path = out / sample_grid_file(step)
        nrow = max(1, int(len(grid) ** 0.5))
        save_image(grid, path, nrow=nrow, normalize=True, value_range=(-1, 1))
        result["artifact/samples"] = str(path.relative_to(out))
        real = out / SAMPLES_DIR / REAL_GRID
        if evaluator is not None and not real.exists():  # once: the digits to judge them by
            save_image(
                evaluator.real_images[: len(grid)],
                real,
                nrow=nrow,
                normalize=True,
                value_range=(-1, 1),
            )
    if evaluator is not None:
        result |= evaluator(g=g, d=d, cfg=cfg, device=device, out_dir=out, step=step)
    return result
