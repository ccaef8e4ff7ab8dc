"""Speed of one MNIST epoch of the notes' models at batch 256: a plain loop against ours.

    python -m ganrf.tools.bench --data-root DATA          # real MNIST (downloads if missing)
    python -m ganrf.tools.bench --dataset synthetic       # no data needed
    python -m ganrf.tools.bench --models 8                # also 8 trials sharing the device
    python -m ganrf.tools.bench --pack 1,4,8,16           # packed trials: model-epochs/s per size
    python -m ganrf.tools.bench --eval-only --data-root DATA   # time one full evaluation (10k samples)
    python -m ganrf.tools.bench --device cpu --batch-size 64 --set g.width=0.25 --set d.layers=conv13 \
        --set d.dropout=0                           # the laptop preset's rf-13 trial

The plain reference loop is what most GAN code does: a DataLoader over CPU tensors, fp32,
``loss.item()`` every step. The project's loop is :func:`ganrf.training.loop.train` itself. Both run the
same models (the notes' generator and rf-13 discriminator), loss and optimiser in one process;
times are per epoch (60,000 images / 256 = 234 steps), extrapolated from ``--steps`` after
warm-up when fewer. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from ganrf.config import TrainConfig, add_set_flag, parse_set
from ganrf.data import load_training_images, steps_per_epoch, to_float
from ganrf.training import losses
from ganrf.training.loop import build_models, pick_device, train

WARMUP = 5


def bench_config(args: argparse.Namespace, steps: int, threads: int = 0) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "data.dataset": args.dataset,
            "data.root": args.data_root,
            "data.synthetic_size": 60_000,
            "schedule.batch_size": args.batch_size,
            "schedule.steps": WARMUP + steps,
            "schedule.eval_every_steps": WARMUP,  # period 1 = warm-up (and graph capture), 2 = timed
            "eval.metrics": False,
            "device": args.device,
            "threads": threads,
            **parse_set(args.set or []),  # e.g. the laptop preset's models
        }
    )


def reference_epoch_s(cfg: TrainConfig, steps: int) -> float:
    """The plain loop: DataLoader from CPU tensors, fp32, .item() every step."""
    device = pick_device(cfg.device)
    images = load_training_images(cfg.data, torch.device("cpu"), seed=cfg.seed).images
    spe = steps_per_epoch(len(images), cfg.schedule.batch_size, 1)
    loader = DataLoader(
        TensorDataset(images), batch_size=cfg.schedule.batch_size, shuffle=True, drop_last=True
    )
    g, d = build_models(cfg, device)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4)
    it = iter(loader)
    t0 = 0.0
    for i in range(WARMUP + steps):
        if i == WARMUP:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        try:
            (x,) = next(it)
        except StopIteration:
            it = iter(loader)
            (x,) = next(it)
        real = to_float(x.to(device))
        z = torch.randn(len(real), cfg.g.noise_dim, device=device)
        fake = g(z)
        loss_d = losses.ns_d(d(real), d(fake.detach()))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = losses.ns_g(d(fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        loss_d.item(), loss_g.item()
    return (time.perf_counter() - t0) * spe / steps


def ours_epoch_s(cfg: TrainConfig) -> float:
    return train(cfg)["time/epoch_s"]


def _trial(args_dict: dict, steps: int, threads: int, q) -> None:
    q.put(ours_epoch_s(bench_config(argparse.Namespace(**args_dict), steps, threads)))


def shared(args: argparse.Namespace, steps: int, k: int) -> dict:
    """K trials of our loop at once on the same device: aggregate model-epochs per second."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    threads = (
        max(1, torch.get_num_threads() // k)
        if args.device == "cpu" or not torch.cuda.is_available()
        else 0
    )
    procs = [ctx.Process(target=_trial, args=(vars(args), steps, threads, q)) for _ in range(k)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    per = [q.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    return {
        "models": k,
        "epoch_s_each": per,
        "model_epochs_per_s": k / max(per),
        "wall_s_including_startup": wall,
    }


FULL_PRESET = {"trials": 90, "epochs": 50, "evaluations": 10}  # sweeps/mnist_rf.py --preset full


def packed(args: argparse.Namespace, steps: int, k: int) -> dict:
    """One pack of K members (seeds 0..K-1, the notes' models without dropout, which packs
    leave out): seconds per pack-epoch and model-epochs per second."""
    from ganrf.training.loop import train_pack

    base = bench_config(args, steps).to_dict() | {"d.dropout": 0.0}
    cfgs = [TrainConfig.from_dict(base | {"seed": i}) for i in range(k)]
    last = train_pack(cfgs)[0]
    epoch_s = last["time/epoch_s"]
    return {"members": k, "pack_epoch_s": round(epoch_s, 4), "model_epochs_per_s": k / epoch_s}


def projected_full_preset_s(model_epochs_per_s: float, eval_seconds: float) -> float:
    """Wall time of the full MNIST preset at this throughput, evaluations included."""
    p = FULL_PRESET
    return (
        p["trials"] * p["epochs"] / model_epochs_per_s
        + p["trials"] * p["evaluations"] * eval_seconds
    )


def eval_s(args: argparse.Namespace, g_width: float) -> float:
    """One full evaluation (every metric, 10,000 samples generated) of the notes' models."""
    from ganrf.metrics.evaluate import seconds_per_evaluation

    cfg = TrainConfig.from_dict(
        {
            "data.root": args.data_root,
            "data.dataset": args.dataset,
            "eval.samples": 10_000,
            "g.width": g_width,
            "device": args.device,
        }
    )
    device = pick_device(cfg.device)
    g, d = build_models(cfg, device)
    return seconds_per_evaluation(cfg, g, d, device)


def build_parser() -> argparse.ArgumentParser:
    """The bench's flags: what to time, on which data and device."""
    p = argparse.ArgumentParser(
        prog="python -m ganrf.tools.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", choices=("mnist", "synthetic"), default="mnist")
    p.add_argument("--data-root", default="data")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--steps",
        type=int,
        default=0,
        help="timed steps (default: a whole epoch on CUDA, 10 on CPU)",
    )
    p.add_argument("--models", type=int, default=1, help="also time K trials sharing the device")
    add_set_flag(
        p,
        help="change a config key of the timed models, e.g. --set g.width=0.25 "
        "--set d.layers=conv13 --set d.dropout=0 (the laptop preset's rf-13 trial)",
    )
    p.add_argument(
        "--pack",
        help="comma-separated pack sizes, e.g. 1,4,8,16: model-epochs/s of each and the "
        "projected wall time of the full MNIST preset (90 trials x 50 epochs)",
    )
    p.add_argument(
        "--eval-only",
        action="store_true",
        help="time one full evaluation (10k samples, all metrics) instead",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        bench_config(args, 1)
    except ValueError as e:  # a malformed or unknown --set (ConfigError is a ValueError)
        p.error(str(e))
    device = pick_device(args.device)
    if args.eval_only:
        result = {
            "device": str(device),
            "threads": torch.get_num_threads(),
            "eval_s_notes_generator": round(eval_s(args, 1.0), 2),
            "eval_s_generator_width_0.25": round(eval_s(args, 0.25), 2),
        }
        print(json.dumps(result, indent=2))
        return 0
    if args.pack:
        return _bench_packs(args, device)
    print(json.dumps(_bench_loop(args, device), indent=2))
    return 0


def _bench_loop(args: argparse.Namespace, device: torch.device) -> dict:
    """Our loop against the reference loop on the same models and batches: seconds per epoch
    of each, images per second, peak memory; with ``--models`` K, K trials sharing the device
    too."""
    cfg0 = bench_config(args, 1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n_images = load_training_images(cfg0.data, torch.device("cpu")).num_images
    spe = steps_per_epoch(n_images, args.batch_size, 1)
    steps = args.steps or (spe if device.type == "cuda" else 10)
    cfg = bench_config(args, steps)
    ref = reference_epoch_s(cfg, steps)
    ours = ours_epoch_s(cfg)
    result = {
        "device": torch.cuda.get_device_name()
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "steps_timed": steps,
        "steps_per_epoch": spe,
        "reference_epoch_s": round(ref, 4),
        "ours_epoch_s": round(ours, 4),
        "speedup": round(ref / ours, 2),
        "ours_images_per_s": round(spe * args.batch_size / ours, 1),
        "peak_memory_mb": round(
            torch.cuda.max_memory_allocated() / 2**20
            if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            1,
        ),
    }
    if args.models > 1:
        result["shared"] = shared(args, steps, args.models)
    return result


def _bench_packs(args: argparse.Namespace, device: torch.device) -> int:
    try:
        sizes = [int(k) for k in args.pack.split(",") if k.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise SystemExit(
            f"--pack takes comma-separated positive sizes, e.g. 1,4,8; got {args.pack!r}"
        )
    steps = args.steps or (100 if device.type == "cuda" else 3)
    evaluation = eval_s(args, 1.0)
    rows = []
    for k in sizes:
        row = packed(args, steps, k)
        row["full_preset_projected_min"] = round(
            projected_full_preset_s(row["model_epochs_per_s"], evaluation) / 60, 1
        )
        row["model_epochs_per_s"] = float(f"{row['model_epochs_per_s']:.3g}")
        rows.append(row)
        print(json.dumps(row), flush=True)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"\n{name}, torch {torch.__version__}, batch {args.batch_size}, {steps} timed steps, "
        f"evaluation {evaluation:.2f} s (10,000 samples)"
    )
    print("| pack | s / pack-epoch | model-epochs / s | full preset, projected |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['members']} | {r['pack_epoch_s']} | {r['model_epochs_per_s']} | "
            f"{r['full_preset_projected_min']} min |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
