"""A lent GPU, about 12 minutes: the device check, the pack bench, and the notes' onelayer
experiment at the notes' widths, with every figure written under one folder.

    OUT=/tmp/session python scripts/gpu_session.py --data-root DATA   # on the GPU (real MNIST)
    python scripts/gpu_session.py --cpu-dry-run --out runs/session    # CI: the same steps, tiny, on the CPU

Steps, in order, each a subprocess whose output is kept:

1. ``python -m ganrf.tools.gpucheck`` → ``gpucheck.jsonl`` (one verdict per part);
2. ``python -m ganrf.tools.bench --pack 1,4,8,16`` → ``bench.txt`` and ``bench.json``
   (model-epochs/s per pack size, one evaluation's seconds);
3. ``sweeps/mnist_rf.py --preset full --experiments onelayer --seeds 3`` (8 rfs × 3 seeds,
   packed) with as many epochs as the time left allows at the pack-8 throughput the bench just
   measured (:func:`fit_epochs`; packs of 8, so 3 packed trials) → ``onelayer/results.csv`` and ``onelayer/report.html``.

``session.json`` sums it up: the device, each step's exit status and wall seconds, the epochs
chosen and why. The script exits 1 when a step failed (after running the others) or a file is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 12 * 60
TRIALS = 24  # the full preset's onelayer: 8 rfs x 3 seeds
SWEEP_OVERHEAD_S = 75  # Ray's start, the trials' start-up, the page
MAX_EPOCHS = 50  # the notes' schedule
PACK = 8  # members per packed trial: 24 trials in 3 packs


def fit_epochs(
    seconds: float,
    model_epochs_per_s: float,
    eval_s: float,
    *,
    trials: int = TRIALS,
    safety: float = 0.7,
    max_epochs: int = MAX_EPOCHS,
) -> int:
    """Epochs per trial that fit ``seconds`` of sweep: ``trials`` trials at the measured
    throughput (model-epochs/s, all members of one pack together), each evaluated twice (half way
    and at the end, ``eval_s`` each), using ``safety`` of the time; at least 1, at most
    ``max_epochs``.

    >>> fit_epochs(600, 2.0, 2.0)  # 0.7*600 = 420 s, less 24*2*2 = 96 s of evaluation: 324*2/24
    27
    """
    spare = safety * seconds - trials * 2 * eval_s
    return int(max(1, min(max_epochs, spare * model_epochs_per_s // trials)))


def parse_bench(text: str) -> dict:
    """The bench's JSON rows (one per pack size) and the seconds of one evaluation."""
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    m = re.search(r"evaluation ([0-9.]+) s", text)
    if not rows or not m:
        raise ValueError("the bench printed no pack rows or no evaluation time")
    return {"packs": rows, "eval_s": float(m.group(1))}


def run(name: str, cmd: list[str], out: Path, log: str, timeout: float) -> dict:
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with open(out / log, "w") as f:
        try:
            rc = subprocess.run(
                cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=max(timeout, 1)
            ).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    wall = round(time.perf_counter() - t0, 1)
    print(f"[{name}] exit {rc} after {wall} s (output: {out / log})", flush=True)
    return {"cmd": cmd, "returncode": rc, "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT"), help="folder for every output ($OUT)")
    ap.add_argument("--data-root", help="real MNIST here (MNIST/raw/*-ubyte.gz)")
    ap.add_argument("--budget-s", type=float, default=BUDGET_S, help="whole session, seconds")
    ap.add_argument(
        "--cpu-dry-run",
        action="store_true",
        help="the same three steps on the CPU with tiny settings (synthetic digits, smoke sweep)",
    )
    args = ap.parse_args(argv)
    if not args.out:
        ap.error("give --out DIR or set OUT: the folder the session's figures are written to")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    py = sys.executable
    data = ["--data-root", args.data_root] if args.data_root else []
    session: dict = {"budget_s": args.budget_s, "cpu_dry_run": args.cpu_dry_run, "steps": {}}

    def left() -> float:
        return args.budget_s - (time.perf_counter() - start)

    if args.cpu_dry_run:
        check = [py, "-m", "ganrf.tools.gpucheck", "--device", "cpu", "--samples", "500"]
        check += ["--steps", "6"]
        bench = [py, "-m", "ganrf.tools.bench", "--device", "cpu", "--dataset", "synthetic"]
        bench += ["--pack", "1,2", "--steps", "2", "--batch-size", "16", "--set", "g.width=0.25"]
        bench += ["--set", "d.layers=conv5", "--set", "d.channels=8"]
    else:
        check = [py, "-m", "ganrf.tools.gpucheck", *data]
        bench = [py, "-m", "ganrf.tools.bench", "--pack", "1,4,8,16", *data]
        if not data:
            bench += ["--dataset", "synthetic"]
    session["steps"]["gpucheck"] = run("gpucheck", check, out, "gpucheck.jsonl", left())
    session["steps"]["bench"] = run("bench", bench, out, "bench.txt", left())
    try:
        figures = parse_bench((out / "bench.txt").read_text())
        (out / "bench.json").write_text(json.dumps(figures, indent=2))
        packs = figures["packs"]
        rate = max([r for r in packs if r["members"] <= PACK] or packs, key=lambda r: r["members"])
        sweep_s = left() - SWEEP_OVERHEAD_S
        epochs = fit_epochs(sweep_s, rate["model_epochs_per_s"], figures["eval_s"])
        session["epochs"] = {
            "epochs": epochs,
            "sweep_s": round(sweep_s, 1),
            "pack": rate["members"],
            "model_epochs_per_s": rate["model_epochs_per_s"],
            "eval_s": figures["eval_s"],
        }
    except (OSError, ValueError) as e:
        print(f"[bench] no figures to size the sweep by ({e}); one epoch per trial", flush=True)
        epochs = 1
    if args.cpu_dry_run:
        sweep = [py, "sweeps/mnist_rf.py", "--preset", "smoke", "--experiments", "onelayer"]
        sweep += ["--seeds", "1"]
    else:
        sweep = [py, "sweeps/mnist_rf.py", "--preset", "full", "--experiments", "onelayer"]
        sweep += ["--seeds", "3", "--pack", str(PACK), "--epochs", str(epochs), *data]
        sweep += ["--set", f"schedule.eval_every={max(1, epochs // 2)}"]
    sweep += ["--storage-path", str(out.resolve()), "--name", "onelayer"]
    sweep += ["--trial-timeout-s", str(int(max(left() - 30, 60)))]
    session["steps"]["onelayer"] = run("onelayer", sweep, out, "onelayer.log", left())
    wanted = [
        out / "onelayer" / "results.csv",
        out / "onelayer" / "report.html",
        out / "bench.json",
    ]
    missing = [str(p) for p in wanted if not p.exists()]
    session["missing"] = missing
    session["wall_s"] = round(time.perf_counter() - start, 1)
    session["device"] = _device()
    (out / "session.json").write_text(json.dumps(session, indent=2))
    print(json.dumps({k: v["returncode"] for k, v in session["steps"].items()}), flush=True)
    print(f"session: {session['wall_s']} s on {session['device']}; figures in {out}", flush=True)
    if missing:
        print(f"session: missing {', '.join(missing)}", flush=True)
    return int(bool(missing) or any(s["returncode"] != 0 for s in session["steps"].values()))


def _device() -> str:
    import torch

    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return f"{name}, torch {torch.__version__}"


if __name__ == "__main__":
    raise SystemExit(main())
