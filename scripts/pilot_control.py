"""The positive-control pilot: which laptop schedule lets the notes' discriminator draw digits?

    python scripts/pilot_control.py --data-root DATA [--out results/pilot-control]
    python scripts/pilot_control.py --table results/pilot-control     # the table only

Trains the notes' discriminator (``conv5s2,conv5s2``: rf 13, image head) with the laptop
preset's models and optimiser (quarter-width generator, batch 64, Adam 2e-4 / beta1 0.5) for
9,000 steps (three times the laptop schedule: the pilot's budget) on the pilot seeds 100, 101 and
102, which no question run uses, evaluating every 1,000 steps on 2,000 samples. The learning
rates are constant, so the evaluation at step N is what a schedule of N steps ends with: one run
per seed gives every schedule from 1,000 to 9,000 steps.

Then prints, per schedule, each seed's recognisable share (``metric/recognisable_share``; a
``*`` where the seed passes the recognisable level, which also asks for 8 classes), how many
seeds pass each level, FID-like over its floor, and the minutes a trial of that schedule takes on
this machine (measured step time and evaluation time). The chosen schedule is the shortest at
which at least 2 of 3 seeds pass the recognisable level. Trial folders are kept without their
checkpoints (``--keep-checkpoints`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

SEEDS = (100, 101, 102)
STEPS = 9000
EVAL_EVERY = 1000
# The laptop preset's keys (sweeps/mnist_rf.py), but the schedule.
KEYS = {
    "g.width": 0.25,
    "schedule.eval_every_steps": EVAL_EVERY,
    "eval.samples": 2000,
    "optim.lr_g": 2e-4,
    "optim.lr_d": 2e-4,
    "optim.beta1": 0.5,
}
LAYERS = "conv5s2,conv5s2"
REPORTS = "metrics.jsonl"  # what `ganrf train` writes into its --out folder


def train(root: str, out: Path, seed: int, keep: bool) -> float:
    """One seed's run (skipped when its folder already reached the last step); its wall time."""
    folder = out / f"s{seed}"
    if _reports(folder) and _reports(folder)[-1].get("progress/step") == STEPS:
        return float("nan")
    cmd = [sys.executable, "-m", "ganrf.cli", "train", "--dataset", "mnist"]
    cmd += ["--data-root", root, "--layers", LAYERS, "--head", "image", "--steps", str(STEPS)]
    cmd += ["--batch-size", "64", "--seed", str(seed), "--out", str(folder)]
    for k, v in KEYS.items():
        cmd += ["--set", f"{k}={v}"]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    took = time.perf_counter() - start
    if not keep:
        shutil.rmtree(folder / "checkpoint", ignore_errors=True)
    return took


def _reports(folder: Path) -> list[dict]:
    path = folder / REPORTS
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if "metric/recognisable_share" in r]


def table(out: Path) -> tuple[str, int | None]:
    """The pilot's Markdown table and the chosen schedule (None when no schedule passes)."""
    runs = {s: {r["progress/step"]: r for r in _reports(out / f"s{s}")} for s in SEEDS}
    seeds = [s for s in SEEDS if runs[s]]
    if not seeds:
        raise SystemExit(f"pilot_control: no reports under {out}; run it without --table first")
    head = "| steps | " + " | ".join(f"share s{s}" for s in seeds)
    head += " | recognisable | success | FID / floor (mean) | min / trial |"
    lines = [head, "|" + "---:|" * (len(seeds) + 5)]
    chosen = None
    for step in range(EVAL_EVERY, STEPS + 1, EVAL_EVERY):
        rows = [runs[s].get(step) for s in seeds]
        if any(r is None for r in rows):
            continue
        shares = [
            f"{r['metric/recognisable_share']:.3f}{'*' if r['metric/recognisable'] else ''}"
            for r in rows
        ]
        lax = sum(int(r["metric/recognisable"]) for r in rows)
        strict = sum(int(r["metric/success"]) for r in rows)
        ratio = sum(r["metric/fid_over_floor"] for r in rows) / len(rows)
        minutes = sum(_minutes(r, step) for r in rows) / len(rows)
        lines.append(
            f"| {step:,} | {' | '.join(shares)} | {lax} of {len(rows)} | {strict} of {len(rows)} "
            f"| {ratio:.1f} | {minutes:.1f} |"
        )
        if chosen is None and 3 * lax >= 2 * len(rows):
            chosen = step
    return "\n".join(lines), chosen


def _minutes(report: dict, step: int) -> float:
    """A trial of ``step`` steps, on the machine that ran the pilot: steps at the measured step
    time, plus one evaluation per EVAL_EVERY steps."""
    per_step = report["time/epoch_s"] / report["progress/steps_per_epoch"]
    return (step * per_step + (step // EVAL_EVERY) * report.get("time/eval_s", 0.0)) / 60


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default="data", help="folder with MNIST/raw (default ./data)")
    p.add_argument("--out", default="results/pilot-control", help="where the seeds' folders go")
    p.add_argument("--table", metavar="DIR", help="print the table of a finished pilot and exit")
    p.add_argument("--keep-checkpoints", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.table or args.out)
    if not args.table:
        out.mkdir(parents=True, exist_ok=True)
        for seed in SEEDS:
            took = train(args.data_root, out, seed, args.keep_checkpoints)
            print(f"seed {seed}: {took / 60:.1f} min wall", file=sys.stderr)
    text, chosen = table(out)
    print(text)
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        + (
            f"chosen schedule: {chosen:,} steps (the shortest at which 2 of 3 seeds pass the "
            "recognisable level)"
            if chosen
            else f"no schedule up to {STEPS:,} steps passes the recognisable level in 2 of 3 seeds"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
