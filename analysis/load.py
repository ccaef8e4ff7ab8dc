"""Read experiment folders into one tidy DataFrame: one row per trial x evaluation.

What a trial folder holds, and how it is read, is :mod:`ganrf.runs`' business (torch-free): the
resolved ``config.json``, the design's ``design.json`` (rf, decision rf, depth, parameters), the
sweep's ``meta.json`` and Tune's ``result.json``. Nothing here re-derives a default. Trials that
are still running, were interrupted, diverged or errored are kept, with their status; a trial
that never reported still gets one row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ganrf import runs, storage
from ganrf.config import ConfigError, carried_config  # the torch-free core, as all of ganrf here
from ganrf.design.designs import DesignError
from ganrf.metrics.spec import METRICS
from ganrf.runs import TRIAL_STATUSES
from ganrf.storage import atomic_path

__all__ = ["load_experiment", "load_trial", "final_rows", "write_results_csv", "TRIAL_STATUSES"]

# Columns every frame has, in this order, before the metrics.
ID_COLUMNS = [
    "dataset",
    "experiment_name",
    "experiment",
    "trial",
    "trial_status",
    "preset",
    "seed",
    "rf",
    "decision_rf",
    "depth",
    "head",
    "norm",
    "layers",
    "channels",
    "dropout",
    "params_d",
    "loss",
    "step",
    "epoch",
]
# Every registered metric gets a column even when no trial reported it (an experiment whose
# trials all diverged before their first evaluation still draws its page).
METRIC_COLUMNS = [
    *METRICS,
    "artifact/samples",
    "artifact/erf_conv",
    "artifact/erf_decision",
    "diverged_step",
    "time_total_s",
]
# design.json field -> column
DESIGN_COLUMNS = {
    "rf": "rf",
    "decision_rf": "decision_rf",
    "depth": "depth",
    "head": "head",
    "norm": "norm",
    "layers": "layers",
    "channels": "channels",
    "dropout": "dropout",
    "params": "params_d",
}


def _design_fields(folder: runs.TrialFolder) -> dict[str, Any]:
    """The discriminator as design.json describes it; for a trial that never got as far as
    writing it, the same description made by the same code from the design its params.json
    carries (parsed from its config only in a trial from before the design was carried)."""
    if folder.design and "discriminator" in folder.design:
        return folder.design["discriminator"]
    if not folder.config:
        return {}
    try:
        return carried_config(folder.config, folder.carried).design().to_dict()
    except (ConfigError, DesignError):
        return {}


def load_trial(
    trial_dir: Path | runs.TrialFolder, experiment: Path, preset: str | None = None
) -> list[dict[str, Any]]:
    """The rows of one trial folder (its path, or the folder already read): one per report
    (one in all when it never reported).

    ``trial_status`` is the trial's status (:data:`TRIAL_STATUSES`), on each of its rows; the
    per-report ``status`` Tune recorded is folded into it, not kept as a second column."""
    folder = trial_dir if isinstance(trial_dir, runs.TrialFolder) else runs.read_trial(trial_dir)
    trial_dir = folder.path
    experiment_name = experiment.name
    cfg, design = folder.config, _design_fields(folder)
    status = folder.status
    common = {
        "dataset": cfg.get("data.dataset"),
        "experiment_name": experiment_name,
        "experiment": folder.meta.get(runs.EXPERIMENT_KEY),
        "trial": trial_dir.relative_to(experiment).as_posix(),  # a packed member: pack/member
        "trial_dir": str(trial_dir),
        "trial_status": status,
        "preset": preset,
        "seed": cfg.get("seed"),
        **{col: design.get(key) for key, col in DESIGN_COLUMNS.items()},
        "loss": cfg.get("loss.kind"),
        "config": json.dumps(cfg, sort_keys=True),
    }
    if isinstance(common["channels"], list):
        common["channels"] = ",".join(map(str, common["channels"]))
    if not folder.results:
        return [common]
    rows = []
    for r in folder.results:
        row = dict(common)
        row.update({k: v for k, v in r.items() if "/" in k or k == "diverged_step"})
        row["step"] = r.get("progress/step")
        row["epoch"] = r.get("progress/epoch")
        row["time_total_s"] = r.get("time_total_s")
        rows.append(row)
    return rows


def load_experiment(*paths: str | Path) -> pd.DataFrame:
    """One tidy frame over every trial x evaluation of the experiments at ``paths`` (local
    folders, or object-store URIs, fetched to a temporary folder first)."""
    import tempfile

    rows: list[dict[str, Any]] = []
    tmp = None
    for path in paths:
        if storage.is_uri(path):
            tmp = tmp or tempfile.mkdtemp(prefix="ganrf-fetch-")
            with storage.reaching(path):
                path = runs.fetch_experiment(str(path), tmp)
        for exp in runs.experiment_dirs(path):
            preset = runs.sweep_preset(exp)
            for folder in runs.walk_trials(exp):
                rows += load_trial(folder, exp, preset)
    frame = pd.DataFrame(rows)
    for col in ID_COLUMNS + METRIC_COLUMNS:
        if col not in frame.columns:
            frame[col] = pd.NA if col.startswith("artifact/") else float("nan")
    cols = [c for c in ID_COLUMNS if c in frame.columns]
    rest = sorted(c for c in frame.columns if c not in cols)
    return frame[cols + rest]


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every trial (one row per trial)."""
    order = frame.assign(_step=frame["step"].fillna(-1) if "step" in frame else -1)
    return (
        order.sort_values("_step")
        .groupby(["experiment_name", "trial"], as_index=False)
        .tail(1)
        .drop(columns="_step")
        .sort_values(["experiment_name", "rf", "depth", "head", "seed"])
        .reset_index(drop=True)
    )


def write_results_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """``results.csv``: one row per trial, design fields first, final metrics after."""
    path = Path(path)
    final = final_rows(frame).drop(columns=["config", "trial_dir"], errors="ignore")
    with atomic_path(path) as tmp:
        final.to_csv(tmp, index=False)
    return path
