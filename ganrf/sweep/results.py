"""The end of a sweep: its results published, and how its trials ended, in one line."""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ganrf import runs, storage

# Trial statuses that are results: a diverged trial ended by the training's own rule, and its
# page shows it. A sweep none of whose trials reached one of these failed (exit status 1).
RESULT_STATUSES = ("finished", "diverged")
SHOWN_LOGS = 3  # error.txt paths printed when trials failed


# What a sweep script hands main() to write results.csv and the page at the end
# (analysis.publish.publish): exp_path -> (local experiment folder, csv path, page path).
Publish = Callable[[str], "tuple[Path, str, str]"]


def finish(exp_path: str, prog: str = "sweep", publish: Publish | None = None) -> int:
    """Publish the results (``publish``: results.csv and the page), then print how many trials
    finished, diverged, errored, timed out or are unfinished.

    Returns:
        0 when at least one trial finished (or diverged), else 1, with one sentence on stderr
        saying how the trials ended and where their error logs are.
    """
    if publish is not None:
        local, csv, page = publish(exp_path)
        print(f"results: {csv}\nreport:  {page}")
    elif storage.is_uri(exp_path):
        local = runs.fetch_experiment(exp_path, tempfile.mkdtemp(prefix="ganrf-results-"))
    else:
        local = Path(exp_path)
    folders = runs.walk_trials(local)
    statuses = {f.path.relative_to(local).as_posix(): f.status for f in folders}
    counts = Counter(statuses.values())
    names = {"running": "unfinished", "timed_out": "timed out"}
    summary = ", ".join(
        f"{counts[s]} {names.get(s, s)}" for s in runs.TRIAL_STATUSES if counts.get(s)
    )
    logs = []  # a pack's members share its error.txt: list each file once
    for f in folders:
        tune_dir = f.pack_dir or f.path
        log_file = f"{exp_path}/{tune_dir.relative_to(local).as_posix()}/{runs.ERROR_FILE}"
        failed = f.status not in RESULT_STATUSES and (tune_dir / runs.ERROR_FILE).exists()
        if failed and log_file not in logs:
            logs.append(log_file)
    where = ""
    if logs:
        more = f" and {len(logs) - SHOWN_LOGS} more" if len(logs) > SHOWN_LOGS else ""
        where = f"; their logs: {', '.join(logs[:SHOWN_LOGS])}{more}"
    print(f"trials:  {summary or 'none'}{where}")
    if any(s in RESULT_STATUSES for s in statuses.values()):
        return 0
    unfinished = counts.get("running", 0)
    name = exp_path.rstrip("/").rsplit("/", 1)[-1]
    hint = f"; continue it with --resume --name {name}" if unfinished else ""
    print(f"{prog}: error: no trial finished ({summary}){where}{hint}", file=sys.stderr)
    return 1
