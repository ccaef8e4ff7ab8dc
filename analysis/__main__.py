"""``python -m analysis EXPERIMENT_DIR [MORE_DIRS] -o report.html``"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from analysis.load import load_experiment, write_results_csv
from analysis.report import write_page
from ganrf.storage import StorageError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Write one self-contained interactive page (and a Markdown twin) comparing "
        "rf effects over one or more experiment folders.",
    )
    p.add_argument(
        "experiments", nargs="+", help="experiment folders (runs/NAME), or a folder of them"
    )
    p.add_argument(
        "-o", "--output", default="report.html", help="the HTML page (default report.html)"
    )
    p.add_argument("--csv", help="also write one row per trial to this CSV")
    args = p.parse_args(argv)
    try:
        frame = load_experiment(*args.experiments)  # once: an s3:// experiment is fetched once
    except (FileNotFoundError, NotADirectoryError, StorageError) as e:
        print(f"python -m analysis: error: {e}", file=sys.stderr)
        return 2
    for path in (args.output, args.csv):  # a bad -o or --csv is found before either is written
        problem = _unwritable(path)
        if problem:
            print(f"python -m analysis: error: {problem}", file=sys.stderr)
            return 2
    try:
        out = write_page(frame, args.output)
        if args.csv:
            write_results_csv(frame, args.csv)
    except OSError as e:  # a folder the checks above let through, e.g. /proc
        where = args.csv if args.csv and Path(args.output).exists() else args.output
        print(
            f"python -m analysis: error: cannot write {where} ({e.strerror}); choose another path",
            file=sys.stderr,
        )
        return 2
    print(f"report: {out} (and {out.with_suffix('.md')})")
    return 0


def _unwritable(path: str | None) -> str | None:
    """Why a file cannot be written at ``path`` (its folder missing, not a folder, or not
    writable), in one sentence, or None."""
    if path is None:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        return f"cannot write {path}: the folder {folder} does not exist; create it first"
    if not os.path.isdir(folder):
        return f"cannot write {path}: {folder} is a file, not a folder; choose another path"
    if os.path.isdir(path) or not os.access(folder, os.W_OK):
        what = "it is a folder" if os.path.isdir(path) else f"{folder} is not writable"
        return f"cannot write {path}: {what}; choose another path"
    return None


if __name__ == "__main__":
    sys.exit(main())
