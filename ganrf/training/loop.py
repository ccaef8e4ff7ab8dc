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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganrf.config import TrainConfig
from ganrf.data import SEEDED_DATASETS, load_training_images, steps_per_epoch
from ganrf.design.designs import DiscriminatorDesign
from ganrf.runs import write_trial_files
from ganrf.training.checkpoint import check_compatible, load_checkpoint
from ganrf.training.malloc import keep_freed_memory
from ganrf.training.pack import Pack, build_models
from ganrf.training.period import Evaluation, PackReport, end_period, report_period
from ganrf.training.stepper import Stepper

Report = Callable[[dict[str, Any], "str | None"], None]
WARMUP_STEPS = 3  # left out of the first period's time per epoch

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
    device = _prepare_process(cfg)
    outs = out_dirs or [None] * len(configs)
    for c, out in zip(configs, outs):
        if out is not None:
            write_trial_files(out, config=c.to_dict())
    data_of = _load_data(configs, device)
    spe = steps_per_epoch(data_of[0].num_images, cfg.schedule.batch_size, cfg.optim.d_steps)
    total = cfg.schedule.steps or cfg.schedule.epochs * spe
    period = cfg.schedule.eval_every_steps or cfg.schedule.eval_every * spe

    pack = Pack(configs, device, designs)
    for i, (c, design, out) in enumerate(zip(configs, designs, outs)):
        if out is not None:
            write_trial_files(out, design=describe_models(c, design, pack.member(i)[0]))
    stepper = Stepper(pack, cfg, device)
    step = _start(stepper, configs, resume_from)
    evaluators = _evaluators(configs, designs, device)  # after the seed, as before a resume
    noises = [fixed_noise(c, c.eval.grid, device) for c in configs]
    evaluation = Evaluation(device, outs, noises, evaluators)
    spe_info = {"progress/steps_per_epoch": spe, "pack/members": len(configs)}
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
        # The first steps of a process pay one-time costs (kernel selection, allocator warm-up,
        # graph capture): leave them out of the time per epoch, or whichever trial runs first
        # in a worker looks slowest.
        warm = WARMUP_STEPS if not warmed and end - step > 2 * WARMUP_STEPS else 0
        warmed = True
        step, bad, train_s, timed_from = _train_period(
            stepper, batches, (step, end, total), warm, check_every, progress
        )
        common = {
            "time/epoch_s": train_s * spe / max(step - timed_from, 1),
            "progress/step": step,
            "progress/epoch": step / spe,
            **spe_info,
        }
        metrics = end_period(pack, stepper, configs, done, bad, common, step, total, evaluation)
        last = [m if m is not None else old for m, old in zip(metrics, last)]
        if report is not None and not report_period(report, metrics, stepper, configs, step, done):
            break
    return last


def _prepare_process(cfg: TrainConfig) -> torch.device:
    """The device ``cfg`` asks for, with this process's threads and heap set for it."""
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cpu":
        keep_freed_memory()
    return device


def _data_key(c: TrainConfig) -> int | None:
    """The members share one data config (:func:`ganrf.training.pack.pack_key`); only the sets
    made from the seed (synthetic digits, photo crops) differ between them, so a real dataset
    and its reference are loaded once."""
    return c.seed if c.data.dataset in SEEDED_DATASETS else None


def _load_data(configs: list[TrainConfig], device: torch.device) -> list[Any]:
    """Each member's training images, a dataset shared members load once."""
    datas: dict[int | None, Any] = {}
    for c in configs:
        if _data_key(c) not in datas:
            datas[_data_key(c)] = load_training_images(c.data, device, seed=c.seed)
    return [datas[_data_key(c)] for c in configs]


def _start(stepper: Stepper, configs: list[TrainConfig], resume_from: str | Path | None) -> int:
    """The step training starts from: a checkpoint's, restored into ``stepper``, else 0."""
    if resume_from is None:
        torch.manual_seed(configs[0].seed + 1)  # dropout, after init (noise has its own streams)
        return 0
    state = load_checkpoint(resume_from)
    check_compatible(configs, state["configs"])
    step = int(state["step"])
    stepper.load_state_dict(state, step)
    return step


def _evaluators(configs: list[TrainConfig], designs: list, device: torch.device) -> list[Any]:
    """Each member's metric evaluator (None with ``eval.metrics`` off); members that share a
    dataset share its reference features, computed once."""
    evaluators: list[Any] = [None] * len(configs)
    if not configs[0].eval.metrics:
        return evaluators
    from ganrf.metrics.evaluate import Evaluator

    shared: dict[int | None, Evaluator] = {}
    for i, (c, d) in enumerate(zip(configs, designs)):
        if _data_key(c) not in shared:
            shared[_data_key(c)] = Evaluator(c, device, design=d)
        evaluators[i] = copy.copy(shared[_data_key(c)])  # the reference features, once
        evaluators[i].design = d
    return evaluators


def _train_period(
    stepper: Stepper,
    batches: Iterator[list[Tensor]],
    steps: tuple[int, int, int],
    warm: int,
    check_every: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, list[int | None], float, int]:
    """``steps`` is (from, to, the run's total): the steps from one to the other (fewer once
    every member has diverged), timed after the first ``warm`` of them, the divergence flags
    read every ``check_every`` steps. Returns the step reached, each member's first non-finite step (None:
    finite), the seconds timed and the step the timing started from."""
    step, end, total = steps
    first = timed_from = step
    t0 = time.perf_counter()
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
    return step, bad, time.perf_counter() - t0, timed_from


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
