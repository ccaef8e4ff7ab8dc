"""``python -m analysis EXPERIMENT_DIR [MORE_DIRS] -o report.html``"""

from __future__ import annotations

import argparse
import sys

from analysis.load import load_experiment, write_results_csv
from analysis.report import write_page


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
        out = write_page(frame, args.output)
        if args.csv:
            write_results_csv(frame, args.csv)
    except (FileNotFoundError, NotADirectoryError) as e:
        print(f"python -m analysis: error: {e}", file=sys.stderr)
        return 2
    print(f"report: {out} (and {out.with_suffix('.md')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
