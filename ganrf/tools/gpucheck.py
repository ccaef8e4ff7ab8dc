"""Check the device path end to end: ``python -m ganrf.tools.gpucheck [--data-root DATA]``.

Runs, on CUDA when it is there (``--device cpu`` to run the same checks on the CPU, as CI does):

* ``steps``: training steps with and without the CUDA graph agree, and stay finite;
* ``evaluation``: a full evaluation (every metric, the ERF) runs on the device;
* ``pack``: a packed trial's members match the same trainings run alone;
* ``residual``: the same for a pack of residual trials (``--family resnet``'s SNGAN recipe:
  residual D and G, spectral norm, hinge), whose power iterations run batched (and, on CUDA,
  inside the CUDA graph);
* ``sweep``: a 4-trial sweep through ``sweeps/mnist_rf.py``, its driver killed mid-sweep and
  finished with ``--resume``: every trial finished, none redone, no step reported twice.

Prints one JSON verdict per part and exits 1 if any failed. Without ``--data-root`` it trains
on synthetic digits; with it, on real MNIST (the sweep part too). On CUDA the models are the
notes' (batch 256); on the CPU they are small, so the whole check takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ganrf import runs
from ganrf.config import TrainConfig
from ganrf.training.loop import pick_device, train, train_pack

SWEEP_SCRIPT = (
    Path(__file__).resolve().parents[2] / "sweeps" / "mnist_rf.py"
)  # ganrf/tools/ → clone


def base_config(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    data = (
        {"data.dataset": "mnist", "data.root": args.data_root, "data.download": False}
        if args.data_root
        else {"data.dataset": "synthetic", "data.synthetic_size": 512}
    )
    size = (
        {"schedule.batch_size": 256}  # the notes' models and batch
        if device.type == "cuda"
        else {"schedule.batch_size": 32, "g.width": 0.125, "d.width": 0.25}
    )
    return {
        **data,
        **size,
        "d.layers": "conv5",
        "d.dropout": 0.0,
        "eval.metrics": False,
        "device": str(device),
    }


def _losses(cfg: dict[str, Any], steps: int) -> list[tuple[float, float]]:
    seen: list[tuple[float, float]] = []
    cfg = cfg | {"schedule.steps": steps, "schedule.eval_every_steps": 1}
    train(TrainConfig.from_dict(cfg), lambda m, c: seen.append((m["loss/d"], m["loss/g"])))
    return seen


def _close(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """The largest difference between two loss curves, relative where a loss is at least 1 and
    absolute below: a hinge G loss near 0 (-mean D(fake), about 0.02 for a residual D whose head
    averages its map) made a rounding difference of 3e-6 read as 1.5e-4 "relative"."""
    worst = 0.0
    for pa, pb in zip(a, b, strict=True):
        for x, y in zip(pa, pb):
            worst = max(worst, abs(x - y) / max(abs(y), 1.0))
    return worst


def check_steps(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    base = base_config(args, device)
    eager = _losses(base | {"cuda_graph": False}, args.steps)
    finite = all(math.isfinite(v) for pair in eager for v in pair)
    if device.type != "cuda":
        return {"ok": finite, "graph": "not applicable off CUDA", "steps": len(eager)}
    graphed = _losses(base | {"cuda_graph": True}, args.steps)
    diff = _close(graphed, eager)
    # The same kernels, replayed: bf16 runs agree to rounding.
    return {"ok": finite and diff < 2e-2, "steps": len(eager), "max_rel_diff_graph": diff}


def check_evaluation(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from ganrf.metrics.evaluate import Evaluator
    from ganrf.training.pack import build_models

    cfg = TrainConfig.from_dict(
        base_config(args, device)
        | {"eval.metrics": True, "eval.samples": args.samples, "eval.erf_images": 32}
    )
    g, d = build_models(cfg, device)
    ev = Evaluator(cfg, device)
    t0 = time.perf_counter()
    out = ev(g=g, d=d, cfg=cfg, device=device, out_dir=None, step=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    numbers = {k: v for k, v in out.items() if isinstance(v, float)}
    return {
        "ok": bool(numbers) and all(math.isfinite(v) for v in numbers.values()),
        "samples": args.samples,
        "eval_s": round(seconds, 3),
        "fid": numbers.get("metric/fid"),
    }


# --family resnet's recipe on 28 px digits (ganrf.sweep.experiments.FAMILY_KEYS / FAMILY_SPACE)
RESIDUAL = {
    "g.kind": "resnet",
    "d.layers": "res3s2,res3s2,res3",
    "d.norm": "spectral",
    "loss.kind": "hinge",
}


def check_pack(
    args: argparse.Namespace, device: torch.device, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    base = (
        base_config(args, device)
        | (extra or {})
        | {
            "schedule.steps": args.steps,
            "schedule.eval_every_steps": 1,
        }
    )
    cfgs = [TrainConfig.from_dict(base | {"seed": s}) for s in range(4 if extra is None else 2)]
    packed: list[list[tuple[float, float]]] = []
    train_pack(cfgs, lambda ms, c: packed.append([(m["loss/d"], m["loss/g"]) for m in ms]))
    first = last = 0.0
    for i, cfg in enumerate(cfgs):
        alone = _losses(cfg.to_dict(), args.steps)
        mine = [p[i] for p in packed]
        first = max(first, _close(mine[:1], alone[:1]))
        last = max(last, _close(mine[-1:], alone[-1:]))
    # fp32 on the CPU: reassociation only (the residual pack's first G loss differs by 8e-6 on
    # an AVX-512 machine; another CPU sums in another order); bf16 on CUDA: rounding, amplified
    # by training. A member mixed with another differs by 1e-2 or more.
    tol_first, tol_last = (1e-4, 1e-3) if device.type == "cpu" else (2e-2, 1e-1)
    return {
        "ok": first <= tol_first and last <= tol_last,
        "members": len(cfgs),
        "step1_max_rel_diff": first,
        f"step{args.steps}_max_rel_diff": last,
    }


def check_residual(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    return {"d.layers": RESIDUAL["d.layers"], **check_pack(args, device, RESIDUAL)}


def check_sweep(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    if not SWEEP_SCRIPT.exists():
        return {"ok": False, "why": f"{SWEEP_SCRIPT} is missing: run from a clone of gan_rf"}
    store = Path(tempfile.mkdtemp(prefix="ganrf-gpucheck-"))
    data = (
        ["--set", "data.dataset=mnist", "--set", f"data.root={args.data_root}"]
        if args.data_root
        else []
    )
    gpus = [] if device.type == "cuda" else ["--gpus-per-trial", "0"]
    cmd = [
        sys.executable,
        str(SWEEP_SCRIPT),
        "--smoke-test",
        "--rfs", "1,5",
        "--seeds", "2",
        "--max-concurrent", "1",
        "--pack", "1",
        "--storage-path", str(store),
        "--name", "check",
        "--set", "schedule.steps=24",
        "--set", "schedule.eval_every_steps=6",
        *data,
        *gpus,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    exp = store / "check"
    killed_at = None
    deadline = time.time() + args.sweep_timeout_s
    try:
        while time.time() < deadline and proc.poll() is None:
            folders = runs.walk_trials(exp) if exp.exists() else []
            finished = [f for f in folders if f.status == "finished"]
            mid = [f for f in folders if f.status == "running" and f.results]
            if finished and mid:
                killed_at = {f.path.name: len(f.results) for f in finished + mid}
                break
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if killed_at is None:
        return {"ok": False, "why": "the sweep never reached a point to kill its driver"}
    resume = subprocess.run(
        [sys.executable, str(SWEEP_SCRIPT), "--resume", "--name", "check"]
        + ["--storage-path", str(store)],
        capture_output=True,
        text=True,
        timeout=args.sweep_timeout_s,
    )
    folders = runs.walk_trials(exp)
    steps = {f.path.name: [r.get("progress/step") for r in f.results] for f in folders}
    no_repeats = all(s == sorted(set(s)) for s in steps.values())
    all_done = len(folders) == 4 and all(f.status == "finished" for f in folders)
    return {
        "ok": resume.returncode == 0 and all_done and no_repeats,
        "trials": len(folders),
        "killed_with_reports": killed_at,
        "resume_exit": resume.returncode,
        "no_step_twice": no_repeats,
        "storage": str(store),
    }


PARTS: dict[str, Callable[[argparse.Namespace, torch.device], dict[str, Any]]] = {
    "steps": check_steps,
    "evaluation": check_evaluation,
    "pack": check_pack,
    "residual": check_residual,
    "sweep": check_sweep,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ganrf.tools.gpucheck",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-root", help="real MNIST here (default: synthetic digits)")
    p.add_argument("--device", default="auto", help="auto (CUDA when there), cuda or cpu")
    p.add_argument("--parts", default=",".join(PARTS), help=f"some of {', '.join(PARTS)}")
    p.add_argument("--steps", type=int, default=12, help="training steps per comparison")
    p.add_argument("--samples", type=int, default=10_000, help="samples the evaluation scores")
    p.add_argument("--sweep-timeout-s", type=float, default=300)
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = [x for x in parts if x not in PARTS]
    if unknown:
        p.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    if args.data_root:
        args.data_root = os.path.abspath(args.data_root)
    try:
        device = pick_device(args.device)
    except ValueError as e:
        p.error(str(e))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    ok = True
    for part in parts:
        t0 = time.perf_counter()
        try:
            verdict = PARTS[part](args, device)
        except Exception as e:  # a crash is a verdict too: say which part and why
            verdict = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            traceback.print_exc(file=sys.stderr)
        verdict = {"part": part, **verdict, "device": name}
        verdict["seconds"] = round(time.perf_counter() - t0, 1)
        ok &= bool(verdict["ok"])
        print(json.dumps(verdict), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
