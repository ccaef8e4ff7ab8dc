"""Copy a finished sweep into results/ as the repository keeps it: without checkpoints.

    python scripts/keep_results.py runs/part1 results/mnist-questions/part1

Keeps what the page and the answers read (``sweep.json``, ``results.csv``, ``report.md``, each
trial's ``config.json``, ``design.json``, ``meta.json``, ``params.json``, reports, sample grids
and ERF maps) and leaves out what only a resume needs or what the page rebuilds: checkpoints,
Tune's pickles and state files, and ``report.html`` (3 MB of plotly.js; ``python -m analysis
DEST`` makes it again). Refuses to write over an existing DEST.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ganrf.runs import SWEEP_FILE

LEFT_OUT = (
    "checkpoint_*",
    "checkpoint",
    "*.pkl",
    "experiment_state-*.json",
    "basic-variant-state-*.json",
    ".validate_storage_marker",
    "report.html",
    "events.out.tfevents.*",
    ".*.tmp",  # a write a kill cut short (ganrf.storage.write_whole's temporary file)
)


def keep(src: Path, dest: Path) -> int:
    """Copy ``src`` to ``dest`` without :data:`LEFT_OUT`; the number of files copied."""
    if not (src / SWEEP_FILE).exists():
        raise SystemExit(f"keep_results: {src} is not a sweep folder (no {SWEEP_FILE})")
    if dest.exists():
        raise SystemExit(f"keep_results: {dest} exists; remove it first or choose another")
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*LEFT_OUT))
    return sum(1 for p in dest.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="the sweep's folder, e.g. runs/NAME")
    p.add_argument("dest", type=Path, help="where it is kept, e.g. results/NAME")
    args = p.parse_args(argv)
    n = keep(args.src, args.dest)
    print(f"{n} files in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
