"""Write an experiment's ``results.csv`` and page beside its trials, wherever it is stored.

The sweep scripts hand :func:`publish` to :func:`ganrf.sweep.cli.main`, which calls it when a sweep
ends (``ganrf`` itself never imports ``analysis``). For an object store the small files are
fetched to a temporary folder, analysed there, and the results uploaded beside the trials.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from analysis.load import load_experiment, write_results_csv
from analysis.report import write_page
from ganrf import runs, storage

RESULTS_CSV = "results.csv"
REPORT_HTML = "report.html"


def publish(exp_path: str) -> tuple[Path, str, str]:
    """(the local copy of the experiment folder, results.csv's path, the page's path)."""
    local = Path(exp_path)
    if storage.is_uri(exp_path):
        local = runs.fetch_experiment(exp_path, tempfile.mkdtemp(prefix="ganrf-results-"))
    frame = load_experiment(local)  # read once, for both files
    csv = write_results_csv(frame, local / RESULTS_CSV)
    page = write_page(frame, local / REPORT_HTML)
    if not storage.is_uri(exp_path):
        return local, str(csv), str(page)
    for f in (csv, page, page.with_suffix(".md")):
        storage.upload(f, exp_path)
    return local, f"{exp_path}/{RESULTS_CSV}", f"{exp_path}/{REPORT_HTML}"
