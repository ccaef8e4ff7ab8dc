"""The one training loop: ``train(config, report)``.

Ray Tune, the ``ganrf train`` CLI, the benchmark and the tests all call :func:`train` and pass
their own ``report(metrics, checkpoint_dir)``; nothing else in the project has a loop.

On CUDA the dataset lives on the GPU, steps run in bf16 autocast with channels_last, Adam is
capturable, and the whole G+D step is captured once in a CUDA graph and replayed (falling back to
eager if capture fails). Losses and the divergence flag stay on the device and are read only at
evaluation time, so there is no host synchronisation per step. On CPU: fp32 (bf16 autocast is
several times slower there), ``threads`` CPU threads, and divergence is checked every step.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganrf import losses
from ganrf.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from ganrf.config import TrainConfig
from ganrf.data import load_training_images, steps_per_epoch
from ganrf.designs import DiscriminatorDesign
from ganrf.models import build_discriminator, generator_for, sample
from ganrf.runs import write_trial_files

log = logging.getLogger(__name__)

Report = Callable[[dict[str, Any], "str | None"], None]


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
# One step
# --------------------------------------------------------------------------------------------


class Stepper:
    """Runs G+D steps and keeps running sums on the device.

    ``first_bad`` holds the first step whose loss was not finite (-1 while all are), updated on
    the device so reading it is the only sync.
    """

    def __init__(self, g: nn.Module, d: nn.Module, cfg: TrainConfig, device: torch.device) -> None:
        self.g, self.d, self.cfg, self.device = g, d, cfg, device
        self.cuda = device.type == "cuda"
        self.graphed = self.cuda and cfg.cuda_graph
        betas = (cfg.optim.beta1, cfg.optim.beta2)
        # Capturable Adam keeps its step count on the GPU so a CUDA graph can replay it.
        kw: dict[str, Any] = (
            {"capturable": True} if self.graphed else ({"fused": True} if self.cuda else {})
        )
        self.opt_g = torch.optim.Adam(g.parameters(), lr=cfg.optim.lr_g, betas=betas, **kw)
        self.opt_d = torch.optim.Adam(d.parameters(), lr=cfg.optim.lr_d, betas=betas, **kw)
        self.d_loss, self.g_loss = losses.get(cfg.loss.kind)
        self.gp = cfg.loss.gp_weight if cfg.loss.kind == "wgan-gp" else 0.0
        self.batch = cfg.schedule.batch_size
        zeros = lambda: torch.zeros((), device=device)  # noqa: E731
        self.sum_d, self.sum_g = zeros(), zeros()
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.step_t = torch.zeros((), dtype=torch.long, device=device)
        self.count = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_reals: list[Tensor] = []
        self.calls = 0

    def _autocast(self):
        if self.cuda:  # cache off: required inside CUDA graph capture
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return nullcontext()

    def _noise(self) -> Tensor:
        return torch.randn(self.batch, self.cfg.g.noise_dim, device=self.device)

    def _step(self, reals: list[Tensor]) -> None:
        g, d = self.g, self.d
        d.requires_grad_(True)
        for i, real in enumerate(reals):
            keep = i == len(reals) - 1  # only the last D step's fakes feed the G update
            with self._autocast(), torch.set_grad_enabled(keep):
                # One G forward per D step; the G update reuses the last one's fakes (as the
                # notes' TF code and DCGAN's reference do), which saves a G forward per step.
                fake = g(self._noise())
            with self._autocast():
                loss_d = self.d_loss(d(real).float(), d(fake.detach()).float())
                if self.gp:
                    loss_d = (
                        loss_d + self.gp * losses.gradient_penalty(d, real, fake.detach()).float()
                    )
            self.opt_d.zero_grad(set_to_none=False)
            loss_d.backward()
            self.opt_d.step()
        d.requires_grad_(False)  # the G step needs grads through D, not of D
        with self._autocast():
            loss_g = self.g_loss(d(fake).float())
        self.opt_g.zero_grad(set_to_none=False)
        loss_g.backward()
        self.opt_g.step()
        d.requires_grad_(True)
        ld, lg = loss_d.detach(), loss_g.detach()
        self.sum_d += ld
        self.sum_g += lg
        bad = ~(torch.isfinite(ld) & torch.isfinite(lg)) & (self.first_bad < 0)
        self.first_bad.copy_(torch.where(bad, self.step_t, self.first_bad))
        self.step_t += 1

    def step(self, reals: list[Tensor]) -> None:
        self.count += 1
        self.calls += 1
        if not self.graphed:
            self._step(reals)
            return
        if self.graph is None and self.calls <= 3:
            self._warm_step(reals)  # warm up on a side stream before capture, as torch requires
            return
        if self.graph is None:
            self._capture(reals)
            if self.graph is None:  # capture failed: eager from now on
                self._step(reals)
                return
        for static, real in zip(self.static_reals, reals):
            static.copy_(real, non_blocking=True)
        self.graph.replay()

    def _warm_step(self, reals: list[Tensor]) -> None:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            self._step(reals)
        torch.cuda.current_stream().wait_stream(s)

    def _capture(self, reals: list[Tensor]) -> None:
        self.static_reals = [r.clone() for r in reals]
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._step(self.static_reals)
        except Exception as e:  # an op that cannot be captured: keep training, eagerly
            log.warning("CUDA graph capture failed (%s); continuing without it", e)
            self.graphed = False
            torch.cuda.synchronize()
            return
        self.graph = graph
        # Capture records the step without running it; replay once to run this step.
        graph.replay()

    def bad_step(self) -> int | None:
        v = int(self.first_bad)  # the sync
        return None if v < 0 else v

    def weights_finite(self) -> bool:
        params = [p for m in (self.g, self.d) for p in m.parameters()]
        return bool(torch.stack([torch.isfinite(p).all() for p in params]).all())

    def take_means(self) -> tuple[float, float]:
        n = max(self.count, 1)
        d, g = float(self.sum_d) / n, float(self.sum_g) / n
        self.sum_d.zero_()
        self.sum_g.zero_()
        self.count = 0
        return d, g


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def _step_batches(data, cfg: TrainConfig, spe: int, step: int, device) -> Iterator[list[Tensor]]:
    """Real batches for each step from ``step`` on, epoch after epoch."""
    k, b = cfg.optim.d_steps, cfg.schedule.batch_size
    epoch, pos = divmod(step, spe)
    while True:
        it = data.batches(seed=cfg.seed, epoch=epoch, start=pos * k, batch_size=b, device=device)
        for _ in range(pos, spe):
            yield [next(it) for _ in range(k)]
        epoch, pos = epoch + 1, 0


def build_models(
    cfg: TrainConfig, device: torch.device, design: DiscriminatorDesign | None = None
) -> tuple[nn.Module, nn.Module]:
    """G and D for ``cfg`` (D from ``design``, by default ``cfg.design()``), initialised from
    ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    g = generator_for(cfg)
    d = build_discriminator(design or cfg.design())
    g, d = g.to(device), d.to(device)
    if device.type == "cuda":
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    return g, d


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
    """Train one GAN.

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
    design = cfg.design()
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        write_trial_files(out, config=cfg.to_dict())

    data = load_training_images(cfg.data, device, seed=cfg.seed)
    spe = steps_per_epoch(data.num_images, cfg.schedule.batch_size, cfg.optim.d_steps)
    total = cfg.schedule.steps or cfg.schedule.epochs * spe
    period = cfg.schedule.eval_every_steps or cfg.schedule.eval_every * spe

    g, d = build_models(cfg, device, design)
    if out is not None:
        write_trial_files(out, design=describe_models(cfg, design, g))
    stepper = Stepper(g, d, cfg, device)
    step = 0
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        check_compatible(cfg, state["config"])
        g.load_state_dict(state["g"])
        d.load_state_dict(state["d"])
        stepper.opt_g.load_state_dict(state["opt_g"])
        stepper.opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng_cpu"])
        if stepper.cuda and state["rng_cuda"]:
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        step = int(state["step"])
        stepper.step_t.fill_(step)
    else:
        torch.manual_seed(cfg.seed + 1)  # training noise and dropout, after init

    evaluator = None
    if cfg.eval.metrics:
        from ganrf.metrics.evaluate import Evaluator

        evaluator = Evaluator(cfg, device, design=design)
    static = {"progress/steps_per_epoch": spe}
    noise = fixed_noise(cfg, cfg.eval.grid, device)
    batches = _step_batches(data, cfg, spe, step, device)
    check_every = 1 if device.type == "cpu" else period
    metrics: dict[str, Any] = {"status": "finished", "progress/step": step, **static}
    while step < total:
        end = min(total, (step // period + 1) * period)
        first = step
        t0 = time.perf_counter()
        bad = None
        while step < end:
            stepper.step(next(batches))
            step += 1
            if progress is not None:
                progress(step, total)
            if step % check_every == 0 and (bad := stepper.bad_step()) is not None:
                break
        bad = stepper.bad_step()  # syncs the device: the period's time is now honest
        train_s = time.perf_counter() - t0
        if bad is None and not stepper.weights_finite():
            # Losses can still be finite one step after an overflow; the weights are not. Never
            # evaluate or checkpoint such a state (LAPACK aborts the process on NaN matrices).
            bad = step - 1
        loss_d, loss_g = stepper.take_means()
        metrics = {
            "loss/d": loss_d,
            "loss/g": loss_g,
            "time/epoch_s": train_s * spe / max(step - first, 1),
            "progress/step": step,
            "progress/epoch": step / spe,
            **static,
        }
        if bad is not None:
            metrics |= {"status": "diverged", "diverged_step": bad}
            log.warning("losses became non-finite at step %d: stopping as diverged", bad)
            if report is not None:
                report(metrics, None)
            return metrics
        t1 = time.perf_counter()
        metrics |= _evaluate(g, d, cfg, device, noise, out, step, evaluator)
        metrics["time/eval_s"] = time.perf_counter() - t1
        metrics["status"] = "finished" if step >= total else "running"
        if report is not None:
            ckpt = Path(tempfile.mkdtemp(prefix="ganrf-ckpt-"))
            try:
                save_checkpoint(ckpt, cfg=cfg, step=step, stepper=stepper)
                report(metrics, str(ckpt))
            finally:
                shutil.rmtree(ckpt, ignore_errors=True)
    return metrics


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
        (out / "samples").mkdir(exist_ok=True)
        path = out / "samples" / f"step{step:08d}.png"
        nrow = max(1, int(len(grid) ** 0.5))
        save_image(grid, path, nrow=nrow, normalize=True, value_range=(-1, 1))
        result["artifact/samples"] = str(path.relative_to(out))
    if evaluator is not None:
        result |= evaluator(g=g, d=d, cfg=cfg, device=device, out_dir=out, step=step)
    return result
